"""The machinery several packages build on: the gradient engine (a fast,
side-effect-free gradient of class scores with respect to the input), its
backward rules at the rectifiers, and the numeric settings it runs with on
each device. Private to deepinside, but shared: attribution, localization,
evaluation and visualization import from here (and only from here across
packages)."""
