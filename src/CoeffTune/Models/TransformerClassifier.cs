using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Models;

/// <summary>
/// What every model offers the rest of the library: logits for a batch, pooled features, and which
/// submodule is the classification head. Models know nothing of fine-tuning methods.
/// </summary>
public abstract class TransformerClassifier : nn.Module
{
    protected TransformerClassifier(string name) : base(name) { }

    /// <summary>The state-dict prefix of the classification head (always trainable).</summary>
    public abstract string HeadName { get; }

    /// <summary>The classification head.</summary>
    public abstract Linear Head { get; }

    /// <summary>Short architecture tag, e.g. "bert" or "vit".</summary>
    public abstract string Architecture { get; }

    /// <summary>Pooled features (B, D) fed to the head.</summary>
    public abstract Tensor Features(Batch batch);

    /// <summary>The length of the token sequence the attention layers see for <paramref name="batch"/> (text tokens, or patches plus [CLS]).</summary>
    public abstract long SequenceLength(Batch batch);

    /// <summary>How <see cref="Features"/> pools token states into one vector ("cls", "mean", ...), recorded in adapters.</summary>
    public virtual string PoolingName => "cls";

    /// <summary>Class logits (B, classes).</summary>
    public Tensor forward(Batch batch)
    {
        using var scope = NewDisposeScope();
        return Head.call(Features(batch)).MoveToOuterDisposeScope();
    }

    /// <summary>Number of parameters of the model without any adapter.</summary>
    public long BaseParameterCount { get; protected set; }

    /// <summary>Number of transformer layers (what <see cref="LayerTokenSource.Tokens"/> is asked about: 0 .. LayerCount-1).</summary>
    public abstract int LayerCount { get; }

    /// <summary>Width D of the token states.</summary>
    public abstract int Width { get; }

    private readonly List<(string Name, LayerTokenSource Source)> layerTokens = new();

    /// <summary>The attached token sources with the names they are registered under, in insertion order.</summary>
    public IReadOnlyList<(string Name, LayerTokenSource Source)> LayerTokenSources => layerTokens.AsReadOnly();

    /// <summary>
    /// Attaches a token source, registered as a submodule under <paramref name="name"/> (a state-dict key segment).
    /// Several sources insert their tokens side by side, in the order they were attached.
    /// </summary>
    public void AttachLayerTokens(LayerTokenSource source, string name)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"a token source name is a non-empty state-dict key segment without '.', got '{name}'", nameof(name));
        if (layerTokens.Any(t => ReferenceEquals(t.Source, source)))
            throw new InvalidOperationException($"this {source.GetType().Name} is already attached to the model");
        if (named_children().Any(c => c.name == name))
            throw new InvalidOperationException($"the model already has a submodule named '{name}'");
        register_module(name, source);
        layerTokens.Add((name, source));
    }

    /// <summary>Where inserted tokens go: after the first token of the sequence (the class token).</summary>
    private const int InsertAt = 1;

    /// <summary>
    /// Runs layer <paramref name="index"/> on <paramref name="x"/> (B, N, D) with its key padding mask (B, N) or null,
    /// with the tokens of every enabled <see cref="LayerTokenSource"/> inserted after the first token and dropped from
    /// the output; without any, exactly <c>layer(x, mask)</c>.
    /// </summary>
    protected Tensor RunLayer(int index, Tensor x, Tensor? mask, Func<Tensor, Tensor?, Tensor> layer)
    {
        var tokens = layerTokens.Where(t => t.Source.Enabled).Select(t => t.Source.Tokens(index, x)).OfType<Tensor>().ToList();
        if (tokens.Count == 0) return layer(x, mask);
        using var scope = NewDisposeScope();
        var inserted = tokens.Count == 1 ? tokens[0] : cat(tokens, 1);
        long p = inserted.shape[1], b = x.shape[0];
        var head = x[.., ..InsertAt];
        var tail = x[.., InsertAt..];
        var input = cat(new[] { head, inserted.to(x.dtype), tail }, 1);
        // Inserted tokens are real tokens to every query: never masked.
        var m = mask is null ? null
            : cat(new[] { mask[.., ..InsertAt], ones(new long[] { b, p }, mask.dtype, mask.device), mask[.., InsertAt..] }, 1);
        var y = layer(input, m);
        return cat(new[] { y[.., ..InsertAt], y[.., (int)(InsertAt + p)..] }, 1).MoveToOuterDisposeScope();
    }
}
