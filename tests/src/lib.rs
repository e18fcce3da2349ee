//! Shared helpers of the workspace integration tests: fresh databases, the moto server, contract suites.
