import numpy as np
import pytest

from srnpose.errors import UserError
from srnpose.hand import skeleton


def test_canonical_order_is_documented_order():
    names = skeleton.CANONICAL_NAMES
    assert len(names) == 21 and names[0] == "wrist"
    assert names[1:5] == ("thumb_mcp", "thumb_pip", "thumb_dip", "thumb_tip")
    assert names[17:21] == ("little_mcp", "little_pip", "little_dip", "little_tip")


@pytest.mark.parametrize("name,count", [("nyu", 14), ("nyu36", 36), ("icvl", 16), ("msra", 21), ("hands17", 21)])
def test_layout_sizes_and_bones(name, count):
    layout = skeleton.get_layout(name)
    assert layout.num_joints == count
    assert layout.from_canonical.shape == (count, 21)
    np.testing.assert_allclose(layout.from_canonical.sum(1), 1.0)
    for a, b in layout.bones:
        assert 0 <= a < count and 0 <= b < count and a != b


def test_nyu_14_are_the_evaluated_indices_of_36():
    assert skeleton.NYU_EVAL_INDICES == (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)
    np.testing.assert_array_equal(skeleton.NYU.from_canonical,
                                  skeleton.NYU36.from_canonical[list(skeleton.NYU_EVAL_INDICES)])
    assert skeleton.NYU.joint_names[0] == "little_tip" and skeleton.NYU.joint_names[-1] == "palm"


def test_msra_and_hands17_orders():
    assert skeleton.MSRA.joint_names[:2] == ("wrist", "index_mcp")
    assert skeleton.MSRA.joint_names[-1] == "thumb_tip"
    assert skeleton.HANDS17.joint_names[:6] == ("wrist", "thumb_mcp", "index_mcp", "middle_mcp", "ring_mcp",
                                                "little_mcp")
    assert skeleton.HANDS17.joint_names[6:9] == ("thumb_pip", "thumb_dip", "thumb_tip")


def test_permutation_layouts_round_trip():
    joints = np.random.default_rng(0).normal(size=(4, 21, 3))
    msra = skeleton.convert(joints, "canonical", "msra")
    hands = skeleton.convert(msra, "msra", "hands17")
    np.testing.assert_allclose(skeleton.convert(hands, "hands17", "canonical"), joints)
    # names follow the joints
    i_msra = skeleton.MSRA.joint_names.index("ring_dip")
    np.testing.assert_allclose(msra[:, i_msra], joints[:, skeleton.CANONICAL_NAMES.index("ring_dip")])


def test_mapping_from_lossy_layout_is_refused():
    with pytest.raises(ValueError, match="nyu"):
        skeleton.mapping_matrix("nyu", "canonical")


def test_unknown_layout_lists_valid_ones():
    with pytest.raises(UserError, match="available: canonical, nyu"):
        skeleton.get_layout("bighand")
