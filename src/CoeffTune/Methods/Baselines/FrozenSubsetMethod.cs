using CoeffTune.Models;

namespace CoeffTune.Methods;

/// <summary>
/// A method that adds nothing and trains a subset of the backbone's own parameters (BitFit's biases,
/// full fine-tuning's everything). Nothing to merge: the trained weights are the model's.
/// </summary>
public sealed class FrozenSubsetMethod : IAttachedMethod
{
    public IMethodConfig Config { get; }
    public IReadOnlyList<string> TrainableNames { get; }
    public IReadOnlyList<string> Targets => TrainableNames;
    public bool Enabled { get; set; } = true;
    public bool CanMerge => false;
    public bool Merged => false;

    public FrozenSubsetMethod(IMethodConfig config, TransformerClassifier model, Func<string, bool> trains)
    {
        Config = config;
        TrainableNames = model.named_parameters().Select(p => p.name)
            .Where(n => !n.StartsWith(model.HeadName + ".") && trains(n)).ToList();
    }

    public void Merge() { }
    public void Unmerge() { }
}
