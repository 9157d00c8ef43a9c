"""Offline text analytics of customer comments (German and English): language, sentiment,
themes, churn/complaint/recommend intents. Entry point: `analyse`."""

from services.scoring.text.analyse import TEXT_ANALYSER_VERSION, analyse

__all__ = ["TEXT_ANALYSER_VERSION", "analyse"]
