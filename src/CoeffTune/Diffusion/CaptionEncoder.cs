using CoeffTune.Assets;
using CoeffTune.Checkpoints;
using CoeffTune.Models;
using CoeffTune.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Diffusion;

/// <summary>
/// Token states of a batch of captions: <see cref="States"/> (N, L, D) padded with zeros to the longest caption,
/// <see cref="Mask"/> (N, L) int64, 1 on real tokens.
/// </summary>
public sealed record TextStates(Tensor States, Tensor Mask) : IDisposable
{
    public long Count => States.shape[0];
    public long Length => States.shape[1];

    /// <summary>The rows at <paramref name="rows"/>, (len, L, D) and (len, L).</summary>
    public TextStates Select(Tensor rows) => new(States.index_select(0, rows), Mask.index_select(0, rows));

    /// <summary>Both padded to <paramref name="length"/> tokens (zero states, mask 0 on the padding).</summary>
    public TextStates PadTo(long length)
    {
        if (length < Length) throw new ArgumentException($"cannot pad {Length} tokens to {length}");
        if (length == Length) return new(States.alias(), Mask.alias());
        long extra = length - Length;
        return new(nn.functional.pad(States, new long[] { 0, 0, 0, extra }), nn.functional.pad(Mask, new long[] { 0, extra }));
    }

    /// <summary>The rows of <paramref name="a"/> then those of <paramref name="b"/>, padded to a common length.</summary>
    public static TextStates Concat(TextStates a, TextStates b)
    {
        long length = Math.Max(a.Length, b.Length);
        using var pa = a.PadTo(length);
        using var pb = b.PadTo(length);
        return new(cat(new[] { pa.States, pb.States }, 0), cat(new[] { pa.Mask, pb.Mask }, 0));
    }

    public TextStates To(Device device) => new(States.to(device), Mask.to(device));

    public void Dispose()
    {
        States.Dispose();
        Mask.Dispose();
    }
}

/// <summary>What turns captions into the token states a diffusion model is conditioned on.</summary>
public interface ICaptionEncoder
{
    /// <summary>The token states' width.</summary>
    int Width { get; }
    /// <summary>The captions' token states, float32 on the CPU, padded to the longest.</summary>
    TextStates Encode(IReadOnlyList<string> captions);
}

/// <summary>
/// The frozen text encoder of text-to-image diffusion: all-MiniLM-L6-v2's last hidden states for a caption (as SDXL
/// conditions on frozen CLIP text encoders' token states). The encoder never trains, and captions repeat (a class
/// name with a few attributes), so each distinct caption is encoded once and its states kept (on the CPU).
/// </summary>
public sealed class CaptionEncoder : ICaptionEncoder, IDisposable
{
    private readonly BertClassifier encoder;
    private readonly TextTokenizer tokenizer;
    private readonly Dictionary<string, Tensor> cache = new(StringComparer.Ordinal);

    /// <summary>The token states' width (MiniLM: 384).</summary>
    public int Width => encoder.Config.Dim;

    /// <summary>The asset name of the encoder this library conditions on.</summary>
    public const string DefaultModel = "minilm";

    public CaptionEncoder(BertClassifier encoder, TextTokenizer tokenizer)
    {
        this.encoder = encoder;
        this.tokenizer = tokenizer;
        encoder.eval();
        foreach (var p in encoder.parameters()) p.requires_grad = false;
    }

    /// <summary>all-MiniLM-L6-v2 with its tokenizer, fetched into <paramref name="cache"/> on first use.</summary>
    public static CaptionEncoder MiniLM(AssetCache? cache = null, TextWriter? log = null)
    {
        var bert = PretrainedModels.LoadBert(DefaultModel, classes: 1, cache: cache, log: log);
        return new CaptionEncoder(bert.Model, bert.Tokenizer);
    }

    /// <summary>How many distinct captions have been encoded.</summary>
    public int CachedCaptions => cache.Count;

    /// <summary>The captions' token states, float32 on the CPU, padded to the longest; uncached captions are encoded in one batch.</summary>
    public TextStates Encode(IReadOnlyList<string> captions)
    {
        var missing = captions.Distinct(StringComparer.Ordinal).Where(c => !cache.ContainsKey(c)).ToList();
        if (missing.Count > 0) EncodeMissing(missing);
        long length = captions.Count == 0 ? 1 : captions.Max(c => cache[c].shape[0]);
        using var scope = NewDisposeScope();
        var states = zeros(captions.Count, length, Width);
        var mask = zeros(captions.Count, length, ScalarType.Int64);
        using (no_grad())
            for (int i = 0; i < captions.Count; i++)
            {
                var s = cache[captions[i]];
                states[i, TensorIndex.Slice(0, s.shape[0])] = s;
                mask[i, TensorIndex.Slice(0, s.shape[0])] = 1;
            }
        return new TextStates(states.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    private void EncodeMissing(IReadOnlyList<string> captions)
    {
        var device = encoder.parameters().First().device;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        for (int start = 0; start < captions.Count; start += 64)
        {
            var chunk = captions.Skip(start).Take(64).ToList();
            using var batch = tokenizer.EncodeBatch(chunk, device);
            var hidden = encoder.Encode(batch.Inputs, batch.AttentionMask, batch.TokenTypeIds).to(ScalarType.Float32).cpu();
            var lengths = batch.AttentionMask!.sum(1).cpu().data<long>().ToArray();
            for (int i = 0; i < chunk.Count; i++)
                cache[chunk[i]] = hidden[i, TensorIndex.Slice(0, lengths[i])].clone().DetachFromDisposeScope();
        }
    }

    public void Dispose()
    {
        foreach (var t in cache.Values) t.Dispose();
        cache.Clear();
        encoder.Dispose();
        tokenizer.Dispose();
    }
}
