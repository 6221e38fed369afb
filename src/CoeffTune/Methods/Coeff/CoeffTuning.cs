using CoeffTune.Attention;
using TorchSharp;

namespace CoeffTune.Methods.Coeff;

/// <summary>Adds Coeff-Tuning to a model: one <see cref="CoeffMixing"/> per chosen attention layer.</summary>
public static class CoeffTuning
{
    /// <summary>The name the mixing module is registered under in its attention layer.</summary>
    public const string ModuleName = "mixing";

    /// <summary>
    /// Attaches an H x H alpha to every <see cref="MultiHeadAttention"/> of <paramref name="model"/> that the config's
    /// target patterns choose (all of them, self- and cross-attention alike, when it has none), moved to the device
    /// and dtype of that layer. Nothing is frozen. Returns the attached layers by module path.
    /// </summary>
    public static IReadOnlyDictionary<string, CoeffMixing> Apply(torch.nn.Module model, CoeffConfig? config = null) =>
        Apply(new AttachTarget(model), config ?? new CoeffConfig());

    public static IReadOnlyDictionary<string, CoeffMixing> Apply(AttachTarget target, CoeffConfig config)
    {
        var chosen = config.TargetModules is { } patterns
            ? Targets.Select<MultiHeadAttention>(target, patterns, "coeff")
            : target.Model.named_modules().Prepend(("", target.Model))
                .Where(m => m.Item2 is MultiHeadAttention && !target.IsExcluded(m.Item1))
                .Select(m => (m.Item1, (MultiHeadAttention)m.Item2)).ToList();
        var attached = new Dictionary<string, CoeffMixing>();
        foreach (var (path, attention) in chosen)
        {
            var mixing = new CoeffMixing(attention.Heads, config);
            var w = attention.query.weight!;
            mixing.to(w.dtype).to(w.device);
            attention.AttachMapTransform(mixing, ModuleName);
            attached[path] = mixing;
        }
        if (attached.Count == 0)
            throw new ArgumentException($"model {target.Model.GetName()} has no {nameof(MultiHeadAttention)} layer to attach Coeff-Tuning to");
        return attached;
    }
}
