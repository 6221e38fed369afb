using CoeffTune.Models;

namespace CoeffTune.Methods.Coeff;

/// <summary>Coeff-Tuning attached to every attention layer. Cannot merge: alpha acts after the softmax.</summary>
public sealed class CoeffMethod : IAttachedMethod
{
    private readonly IReadOnlyDictionary<string, CoeffMixing> layers;
    private bool enabled = true;

    public CoeffMethod(CoeffConfig config, TransformerClassifier model)
    {
        Config = config;
        layers = CoeffTuning.Apply(model, config);
        TrainableNames = layers.Keys.Select(path => $"{path}.{CoeffTuning.ModuleName}.alpha").ToList();
        Targets = layers.Keys.ToList();
    }

    public IMethodConfig Config { get; }
    public IReadOnlyList<string> TrainableNames { get; }
    public IReadOnlyList<string> Targets { get; }
    public bool CanMerge => false;
    public bool Merged => false;
    public IReadOnlyDictionary<string, CoeffMixing> Layers => layers;

    public bool Enabled
    {
        get => enabled;
        set { enabled = value; foreach (var m in layers.Values) m.Enabled = value; }
    }

    public void Merge() { }
    public void Unmerge() { }
}
