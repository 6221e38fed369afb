using static TorchSharp.torch;

namespace CoeffTune.Methods.Coeff;

/// <summary>Coeff-Tuning attached to the chosen attention layers. Cannot merge: alpha acts after the softmax.</summary>
public sealed class CoeffMethod : IAttachedMethod
{
    private readonly IReadOnlyDictionary<string, CoeffMixing> layers;
    private readonly List<string> paths;
    private bool enabled = true;

    public CoeffMethod(CoeffConfig config, AttachTarget target)
    {
        Config = config;
        layers = CoeffTuning.Apply(target, config);
        paths = layers.Keys.ToList();
        TrainableNames = paths.Select(path => $"{path}.{CoeffTuning.ModuleName}.alpha").ToList();
    }

    public IMethodConfig Config { get; }
    public IReadOnlyList<string> TrainableNames { get; }
    public IReadOnlyList<string> Targets => paths;
    public bool CanMerge => false;
    public bool Merged => false;
    /// <summary>The mixing modules by attention-layer path, in model order.</summary>
    public IReadOnlyDictionary<string, CoeffMixing> Layers => layers;

    /// <summary>The mixing module of layer <paramref name="index"/> (model order).</summary>
    public CoeffMixing Layer(int index) => index >= 0 && index < paths.Count ? layers[paths[index]]
        : throw new ArgumentOutOfRangeException(nameof(index), index, $"coeff is attached to {paths.Count} attention layers");

    /// <summary>The mixing module of the attention layer at <paramref name="path"/>.</summary>
    public CoeffMixing Layer(string path) => layers.TryGetValue(path, out var m) ? m
        : throw new KeyNotFoundException($"coeff: no attention layer '{path}'; attached: {string.Join(", ", paths.Take(6))}{(paths.Count > 6 ? ", ..." : "")}");

    /// <summary>
    /// Trainable parameters (H x H per layer) grouped by a kind of attention the caller names from a layer's path, e.g.
    /// BartFamily.KindOf: encoder self-attention, decoder self-attention, decoder cross-attention.
    /// </summary>
    public IReadOnlyDictionary<string, long> ParameterCounts(Func<string, string?> kindOf) =>
        layers.GroupBy(l => kindOf(l.Key) ?? "other").ToDictionary(g => g.Key, g => g.Sum(l => (long)l.Value.Heads * l.Value.Heads));

    /// <summary>A copy of the trainable alpha of layer <paramref name="index"/>, (H, H).</summary>
    public Tensor GetAlpha(int index) => Layer(index).alpha.detach().clone();

    /// <summary>Sets the trainable alpha of layer <paramref name="index"/> from an (H, H) tensor, e.g. one trained elsewhere.</summary>
    public void SetAlpha(int index, Tensor alpha) => Layer(index).SetAlpha(alpha);

    /// <summary>Sets the trainable alpha of the attention layer at <paramref name="path"/>.</summary>
    public void SetAlpha(string path, Tensor alpha) => Layer(path).SetAlpha(alpha);

    public bool Enabled
    {
        get => enabled;
        set { enabled = value; foreach (var m in layers.Values) m.Enabled = value; }
    }

    public void Merge() { }
    public void Unmerge() { }
}
