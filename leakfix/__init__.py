"""leakfix: find wrong-language token leaks in LLM answers, correct them token by token, train them away."""

__version__ = "0.1.0"

STAGES = ("generate", "detect", "correct", "train", "evaluate", "report")
