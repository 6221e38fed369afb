using CoeffTune.Diffusion;
using CoeffTune.Models.Dit;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Diffusion;

/// <summary>Small diffusion transformers and a stand-in text encoder, reproducible from a seed.</summary>
internal static class TinyDiffusion
{
    public static DitConfig Shape => new() { ImageSize = 8, PatchSize = 4, Channels = 1, Dim = 32, Depth = 2, Heads = 4, MlpDim = 64, ContextDim = 12, FrequencyDim = 16 };

    /// <summary>A model as built (adaLN-Zero: the modulation and the output layer start at zero).</summary>
    public static DiffusionTransformer Fresh(int seed = 0, DitConfig? shape = null)
    {
        torch.manual_seed(seed);
        var m = new DiffusionTransformer(shape ?? Shape);
        m.eval();
        return m;
    }

    /// <summary>A model with every parameter drawn at random, the zero-initialised ones included, as a trained one would be.</summary>
    public static DiffusionTransformer Trained(int seed = 0, DitConfig? shape = null)
    {
        var m = Fresh(seed, shape);
        var g = new Generator((ulong)(seed + 77));
        using (no_grad())
            foreach (var (name, p) in m.named_parameters())
                p.copy_(randn(p.shape, p.dtype, generator: g) * (name.EndsWith("bias") ? 0.05 : 0.2));
        return m;
    }
}

/// <summary>
/// A stand-in for the frozen text encoder: each word of a caption, plus a start and an end token, gets a fixed random
/// vector seeded by the word, so equal captions give equal states and the same word the same vector.
/// </summary>
internal sealed class WordHashEncoder(int width = 12) : ICaptionEncoder
{
    public int Width => width;
    public int Calls { get; private set; }

    public TextStates Encode(IReadOnlyList<string> captions)
    {
        Calls++;
        var tokens = captions.Select(c => new[] { "[CLS]" }.Concat(c.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Append("[SEP]").ToArray()).ToList();
        int length = tokens.Max(t => t.Length);
        var states = zeros(captions.Count, length, width);
        var mask = zeros(captions.Count, length, ScalarType.Int64);
        for (int i = 0; i < captions.Count; i++)
            for (int j = 0; j < tokens[i].Length; j++)
            {
                var g = new Generator((ulong)StableHash(tokens[i][j]));
                states[i, j] = randn(new long[] { width }, generator: g);
                mask[i, j] = 1;
            }
        return new TextStates(states, mask);
    }

    private static uint StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char ch in s) h = (h ^ ch) * 16777619;
        return h;
    }
}
