"""No module: torch.utils's place (``import wxb.utils.data``, ``from wxb.utils.data import
DataLoader``), raising the hint ``wxb.utils`` gives instead of Python's bare "No module
named 'wxb.utils'". (A submodule import never reaches wxb's ``__getattr__``.)"""

from wxb import _torch_hint

raise ModuleNotFoundError(_torch_hint("utils"), name=__name__)
