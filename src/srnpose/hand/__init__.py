"""The hand: skeleton layouts, the kinematic hand (round cones, joint limits), IK and joint angles."""
