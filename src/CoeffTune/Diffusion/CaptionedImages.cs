using CoeffTune.Data;
using CoeffTune.Training;
using static TorchSharp.torch;

namespace CoeffTune.Diffusion;

/// <summary>
/// Images with one caption each, ready for diffusion training: the images as one (N, C, H, W) tensor in [-1, 1]
/// and a caption index per image into <see cref="Captions"/>, whose token states are encoded once (captions
/// repeat) and padded to a common length. Caption 0 is always the empty caption, the unconditional input.
/// </summary>
public sealed class CaptionedImages : IBatchSource<DiffusionBatch>, IDisposable
{
    private readonly Tensor images;
    private readonly long[] captionIds;
    private readonly TextStates states;

    public IReadOnlyList<string> Captions { get; }
    public int Count => captionIds.Length;
    public string Name { get; }
    public Tensor Images => images;
    public TextStates States => states;

    /// <summary>The caption of image <paramref name="index"/>.</summary>
    public string Caption(int index) => Captions[(int)captionIds[index]];

    /// <param name="pixels">N*C*H*W values in [0, 1] (as <see cref="ImageDataset"/> holds them).</param>
    /// <param name="captions">One caption per image.</param>
    public CaptionedImages(ReadOnlySpan<float> pixels, int channels, int height, int width, IReadOnlyList<string> captions, ICaptionEncoder encoder, string name = "captioned images")
    {
        long size = (long)channels * height * width;
        if (captions.Count == 0 || pixels.Length != captions.Count * size)
            throw new ArgumentException($"{name}: {pixels.Length} values for {captions.Count} captions of {channels}x{height}x{width} images");
        Name = name;
        var distinct = new List<string> { "" };
        var index = new Dictionary<string, int>(StringComparer.Ordinal) { [""] = 0 };
        captionIds = new long[captions.Count];
        for (int i = 0; i < captions.Count; i++)
        {
            if (!index.TryGetValue(captions[i], out int id)) { id = distinct.Count; index[captions[i]] = id; distinct.Add(captions[i]); }
            captionIds[i] = id;
        }
        Captions = distinct;
        images = (tensor(pixels.ToArray(), new long[] { captions.Count, channels, height, width }) * 2 - 1);
        states = encoder.Encode(distinct);
    }

    public DiffusionBatch MakeBatch(int[] indices, Device device)
    {
        using var scope = NewDisposeScope();
        var rows = tensor(indices.Select(i => (long)i).ToArray());
        var ids = tensor(indices.Select(i => captionIds[i]).ToArray());
        var batch = new DiffusionBatch(
            images.index_select(0, rows).to(device),
            states.States.index_select(0, ids).to(device),
            states.Mask.index_select(0, ids).to(device),
            states.States.narrow(0, 0, 1).to(device),
            states.Mask.narrow(0, 0, 1).to(device));
        foreach (var t in new[] { batch.Images, batch.Context, batch.ContextMask, batch.EmptyContext, batch.EmptyMask }) t.MoveToOuterDisposeScope();
        return batch;
    }

    public void Dispose()
    {
        images.Dispose();
        states.Dispose();
    }
}
