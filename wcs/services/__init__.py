"""Application services: one transaction per use case, shared by the API, the
controller and the tools. They compose the pure domain with persistence."""
