using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Coeff;

/// <summary>One layer's effective mixing matrix alpha' (rows: the head receiving, columns: the head whose map is mixed in).</summary>
public sealed record LayerMixing(string Layer, double[,] AlphaPrime)
{
    public int Heads => AlphaPrime.GetLength(0);

    /// <summary>||alpha' - I||_F: how far the layer moved from plain multi-head attention.</summary>
    public double DistanceFromIdentity
    {
        get
        {
            double s = 0;
            for (int i = 0; i < Heads; i++)
                for (int j = 0; j < Heads; j++)
                {
                    double d = AlphaPrime[i, j] - (i == j ? 1 : 0);
                    s += d * d;
                }
            return Math.Sqrt(s);
        }
    }

    /// <summary>
    /// The <paramref name="k"/> off-diagonal entries largest in magnitude: (receiving head, source head, value);
    /// ties go to the smaller receiving head, then the smaller source head.
    /// </summary>
    public IEnumerable<(int To, int From, double Value)> LargestOffDiagonal(int k)
    {
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, "the number of entries must not be negative");
        return (from i in Enumerable.Range(0, Heads) from j in Enumerable.Range(0, Heads) where i != j select (i, j, AlphaPrime[i, j]))
            .OrderByDescending(e => Math.Abs(e.Item3)).ThenBy(e => e.i).ThenBy(e => e.j).Take(k);
    }
}

/// <summary>
/// What Coeff-Tuning learned: the effective mixing matrix alpha' of every layer, formed from the trained alpha
/// exactly as <see cref="CoeffMixing"/> forms it when it mixes maps in evaluation (paper Eq. 7: I + alpha for the
/// residual parameterisation, alpha itself for the direct ones; no coefficient dropout).
/// </summary>
public static class CoeffAnalysis
{
    /// <summary>The end of the state-dict name of a layer's alpha: "&lt;attention path&gt;.mixing.alpha".</summary>
    public const string AlphaSuffix = "." + CoeffTuning.ModuleName + ".alpha";

    /// <summary>
    /// alpha' for a trained <paramref name="alpha"/> (H x H) under <paramref name="config"/>'s parameterisation,
    /// in float64. <paramref name="name"/> names the tensor in errors.
    /// </summary>
    public static double[,] EffectiveMixing(Tensor alpha, CoeffConfig config, string name = "alpha")
    {
        if (ShapeProblem(alpha) is { } problem) throw new ArgumentException($"'{name}' {problem}", nameof(alpha));
        int h = (int)alpha.shape[0];
        using var scope = NewDisposeScope();
        // A random initialisation (direct-random) draws from the global generator: the analysis leaves it as it was.
        var rng = torch.random.get_rng_state();
        CoeffMixing mixing;
        try { mixing = new CoeffMixing(h, config); }
        finally { torch.random.set_rng_state(rng); }
        using (mixing)
        {
            mixing.to(ScalarType.Float64);
            mixing.eval();
            using (no_grad()) mixing.alpha.copy_(alpha.detach().to(ScalarType.Float64).cpu());
            var values = mixing.MixingMatrix().detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();
            var a = new double[h, h];
            for (int i = 0; i < h; i++)
                for (int j = 0; j < h; j++)
                    a[i, j] = values[i * h + j];
            return a;
        }
    }

    /// <summary>
    /// alpha' of every layer in <paramref name="tensors"/>: every "&lt;keyPrefix&gt;&lt;layer&gt;.mixing.alpha" is one
    /// layer (other tensors are ignored), in layer order (layer 10 after layer 9). <paramref name="source"/> names
    /// where the tensors come from in errors, which name the key at fault. Throws when there is no alpha at all.
    /// </summary>
    public static IReadOnlyList<LayerMixing> Layers(IEnumerable<KeyValuePair<string, Tensor>> tensors, CoeffConfig config, string source, string keyPrefix = "")
    {
        var layers = new List<LayerMixing>();
        foreach (var (key, t) in tensors.Where(kv => kv.Key.EndsWith(AlphaSuffix, StringComparison.Ordinal)))
        {
            if (ShapeProblem(t) is { } problem) throw new InvalidDataException($"{source}: '{key}' {problem}");
            var layer = key[..^AlphaSuffix.Length];
            if (keyPrefix.Length > 0 && layer.StartsWith(keyPrefix, StringComparison.Ordinal)) layer = layer[keyPrefix.Length..];
            layers.Add(new LayerMixing(layer, EffectiveMixing(t, config, key)));
        }
        if (layers.Count == 0) throw new InvalidDataException($"{source}: no '*{AlphaSuffix}' tensors, so no layer's mixing to analyse");
        return layers.OrderBy(l => NaturalKey(l.Layer), StringComparer.Ordinal).ToList();
    }

    private static string? ShapeProblem(Tensor alpha) =>
        alpha.dim() == 2 && alpha.shape[0] == alpha.shape[1] && alpha.shape[0] > 0 ? null : $"has shape [{string.Join(", ", alpha.shape)}], not H x H";

    // "encoder.layer.10.attention" after "encoder.layer.9.attention": numbers compared by value.
    private static string NaturalKey(string s) => Regex.Replace(s, @"\d+", d => d.Value.PadLeft(10, '0'));
}
