"""Pickling of modules mantra constrains.

torch's parametrized classes are made on the fly and refuse pickling; modules mantra
constrains pickle as their original class plus their state, and are re-parametrized on load.
"""

from torch.nn.utils import parametrize as P


def _rebuild_parametrized(cls, state):
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    P._inject_new_class(obj)
    for name in obj.parametrizations:
        P._inject_property(obj, name)
    make_picklable(obj)
    return obj


def _reduce_parametrized(self, protocol=None):
    return (_rebuild_parametrized, (type(self).__bases__[0], dict(self.__dict__)))


def make_picklable(module):
    cls = type(module)
    if cls.__name__.startswith("Parametrized") and "__reduce_ex__" not in cls.__dict__:
        cls.__reduce_ex__ = _reduce_parametrized
