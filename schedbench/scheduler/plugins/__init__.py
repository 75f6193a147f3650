"""The scheduler's plugins, one module each, registered by kube-scheduler's names.

Importing this package imports every module in it, and each module registers its plugin(s)
with :data:`schedbench.scheduler.framework.PLUGINS` through ``@register``.
"""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
