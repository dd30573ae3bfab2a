"""OpsHub: one store and one API for every product tool's work items."""

__version__ = "0.1.0"
