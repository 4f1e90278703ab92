"""Agents of the token-flow market: consumers, providers and the operator."""

from agents.consumer import ConsumerAgent
from agents.operator import OperatorAgent
from agents.provider import ProviderAgent

__all__ = ["ConsumerAgent", "OperatorAgent", "ProviderAgent"]
