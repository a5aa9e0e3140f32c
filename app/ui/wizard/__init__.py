"""The model wizard (Your machine → Pick a model → Download → Ready) and its worker threads."""

from app.ui.wizard.wizard import ModelWizard

__all__ = ["ModelWizard"]
