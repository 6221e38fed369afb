// TorchSharp's default random generator is process-wide: tests that seed it (fresh models, dropout,
// data order, bit-exact resume) must not interleave with others, and resident memory is per process.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
