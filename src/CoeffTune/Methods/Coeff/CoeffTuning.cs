using CoeffTune.Attention;
using TorchSharp;

namespace CoeffTune.Methods.Coeff;

/// <summary>Adds Coeff-Tuning to a model: one <see cref="CoeffMixing"/> per attention layer.</summary>
public static class CoeffTuning
{
    /// <summary>The name the mixing module is registered under in its attention layer.</summary>
    public const string ModuleName = "mixing";

    /// <summary>
    /// Attaches an H x H alpha to every <see cref="MultiHeadAttention"/> of <paramref name="model"/>
    /// (self- and cross-attention alike), moved to the device and dtype of that layer. Nothing is frozen.
    /// Returns the attached layers by module path.
    /// </summary>
    public static IReadOnlyDictionary<string, CoeffMixing> Apply(torch.nn.Module model, CoeffConfig? config = null)
    {
        config ??= new CoeffConfig();
        var attached = new Dictionary<string, CoeffMixing>();
        foreach (var (path, module) in model.named_modules().Prepend(("", model)))
        {
            if (module is not MultiHeadAttention attention) continue;
            var mixing = new CoeffMixing(attention.Heads, config);
            var w = attention.query.weight!;
            mixing.to(w.dtype).to(w.device);
            attention.AttachMapTransform(mixing, ModuleName);
            attached[path] = mixing;
        }
        if (attached.Count == 0)
            throw new ArgumentException($"model {model.GetName()} has no {nameof(MultiHeadAttention)} layer to attach Coeff-Tuning to");
        return attached;
    }
}
