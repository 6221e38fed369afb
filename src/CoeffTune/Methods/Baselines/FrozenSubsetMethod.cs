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

    /// <summary>What merging says of such a method.</summary>
    public const string NotMergedNote = "trained the base weights directly";

    public FrozenSubsetMethod(IMethodConfig config, AttachTarget target, Func<string, bool> trains)
    {
        Config = config;
        TrainableNames = target.Model.named_parameters().Select(p => p.name)
            .Where(n => !target.IsExcluded(n) && trains(n)).ToList();
    }

    public void Merge() { }
    public void Unmerge() { }
}
