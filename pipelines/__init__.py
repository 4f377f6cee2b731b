"""Pipelines: Azure DevOps pipelines, runs, stages and their link to model versions."""
