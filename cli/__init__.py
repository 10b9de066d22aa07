"""The `wcs` console script: the composition root that starts every process.

It lives outside the shared kernel because it imports every application (controller,
API, drivers, simulator, demo, benchmarks), each lazily inside its command."""
