"""The Kubernetes object model: quantities, labels and selectors, API objects."""
