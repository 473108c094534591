"""Metrics of the benchmark that torchmetrics does not provide in the form the tasks need:
token perplexity over a whole stream (``perplexity``) and the firing-rate, synaptic-operation and
energy accounting of spiking models (``energy``, docs/neurons.md "Accounting")."""
