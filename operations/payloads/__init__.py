"""The payload shapes the signal endpoints accept, each parsed into ``NormalisedSignal``s."""
