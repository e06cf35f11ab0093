"""qtrader: execution, risk and accounting between an AI engine's signals and an exchange."""

__version__ = "0.1.0"
