"""Fitting the articulated hand to the depth: a generative refinement of the network's joints (issue 23).

* :mod:`srnpose.fitting.targets`: what is fitted: the window, silhouette and hand points of a frame;
* :mod:`srnpose.fitting.energy`: the energy (data, silhouette, free space, init, pose prior, temporal,
  scale terms) on the differentiable hand of :mod:`srnpose.hand.torch_hand`;
* :mod:`srnpose.fitting.fit`: the solver (Levenberg-Marquardt from the network's joints via IK) and the
  API: ``fit_frame``, ``fit_frames``, ``fit_sequence_frames``, ``fit_results``.
"""
