namespace CoeffTune.Checkpoints;

/// <summary>
/// A checkpoint whose attention head count nothing gives: weights do not show how a projection splits into heads,
/// so it must come from the checkpoint's config.json or from the caller, never from a guess.
/// </summary>
public sealed class MissingHeadCountException(string source, string configKey)
    : ArgumentException($"{source}: the number of attention heads is not in the weights, and no config.json beside it gives {configKey}; give the head count explicitly")
{
    /// <summary>The checkpoint file at fault.</summary>
    public string Checkpoint { get; } = source;
}
