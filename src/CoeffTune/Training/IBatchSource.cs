using CoeffTune.Models;
using static TorchSharp.torch;

namespace CoeffTune.Training;

/// <summary>A set the trainer can draw batches of any kind from by index (its objective says what a batch holds).</summary>
public interface IBatchSource<out TBatch>
{
    int Count { get; }
    /// <summary>The examples at <paramref name="indices"/> as one batch, on <paramref name="device"/>.</summary>
    TBatch MakeBatch(int[] indices, Device device);
}

/// <summary>A labelled set of classification examples.</summary>
public interface IBatchSource : IBatchSource<Batch>
{
}

/// <summary>A batch source over tensors already in memory (inputs (N, ...), labels (N)).</summary>
public sealed class TensorBatchSource(Tensor inputs, Tensor labels) : IBatchSource
{
    public Tensor Inputs => inputs;
    public Tensor Labels => labels;
    public int Count => (int)labels.shape[0];

    public Batch MakeBatch(int[] indices, Device device)
    {
        using var idx = tensor(indices.Select(i => (long)i).ToArray());
        return new Batch(inputs.index_select(0, idx).to(device), Labels: labels.index_select(0, idx).to(device));
    }
}
