"""An unknown class name: suggestions a user meant."""

from __future__ import annotations

import pytest

from deepinside import DeepInsideError, imagenet_classes


def test_names_containing_the_word_come_first():
    suggested = imagenet_classes().suggest("cat")
    assert suggested == ["tabby cat", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    with pytest.raises(DeepInsideError, match="did you mean 'tabby cat', 'tiger cat', 'Persian cat'"):
        imagenet_classes().resolve("cat")


def test_close_spellings_still_follow():
    assert imagenet_classes().suggest("tabbby")[0] == "tabby"
    assert imagenet_classes().suggest("space")[:3] == ["space bar", "space heater", "space shuttle"]
    assert imagenet_classes().suggest("") == []
