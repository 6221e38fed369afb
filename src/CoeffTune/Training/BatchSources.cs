using CoeffTune.Data;
using CoeffTune.Models;
using CoeffTune.Text;
using static TorchSharp.torch;

namespace CoeffTune.Training;

/// <summary>Images with labels, batched by <see cref="ImageDataset.MakeBatch"/>.</summary>
public sealed class ImageBatchSource(ImageDataset data) : IBatchSource
{
    public int Count => data.Count;
    public Batch MakeBatch(int[] indices, Device device) => data.MakeBatch(indices, device);
}

/// <summary>Texts with labels, tokenised with the model's WordPiece vocabulary (each text once).</summary>
public sealed class TextBatchSource(TextDataset data, TextTokenizer tokenizer) : IBatchSource
{
    public int Count => data.Count;

    public Batch MakeBatch(int[] indices, Device device)
    {
        var encoded = tokenizer.EncodeBatch(indices.Select(i => data.Texts[i]).ToArray(), device);
        return encoded with { Labels = tensor(indices.Select(i => (long)data.Labels[i]).ToArray()).to(device) };
    }
}
