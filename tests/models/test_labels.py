import pytest

from deepinside import DeepInsideError, imagenet_classes


def test_thousand_classes_in_standard_order():
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert classes[0].wnid == "n01440764" and classes[0].label == "tench"
    assert classes[999].label == "toilet tissue"


@pytest.mark.parametrize("name", [281, "281", "n02123045", "tabby", "Tabby Cat", "  TABBY  "])
def test_resolve_by_index_wnid_or_any_name(name):
    assert imagenet_classes().resolve(name) == 281


def test_unknown_name_suggests_close_names():
    with pytest.raises(DeepInsideError, match=r"unknown class 'tabbby'.*'tabby'"):
        imagenet_classes().resolve("tabbby")


def test_ambiguous_name_lists_both_classes():
    with pytest.raises(DeepInsideError, match=r"ambiguous: 134 .* or 517"):
        imagenet_classes().resolve("crane")


@pytest.mark.parametrize("bad", [1000, -1, "1000"])
def test_index_out_of_range(bad):
    with pytest.raises(DeepInsideError, match="out of range"):
        imagenet_classes().resolve(bad)


def test_search_by_substring_then_by_spelling():
    assert {c.index for c in imagenet_classes().search("shuttle")} == {812}
    assert 812 in {c.index for c in imagenet_classes().search("space shutle")}
