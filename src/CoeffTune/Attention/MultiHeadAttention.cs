using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CoeffTune.Attention;

/// <summary>
/// Multi-head attention (self or cross) as a filter subspace: every head h produces a post-softmax
/// map F^h = softmax(Q^h K^h^T / sqrt(d)), and the output is concat_h(F^h V^h) W_o.
/// This is the one place where attention maps are made. With no enabled <see cref="MapTransforms"/> the
/// fused scaled-dot-product kernel runs and the maps are never materialised; otherwise the maps are
/// computed explicitly, passed through every enabled transform in order, then through attention dropout,
/// then multiplied by V. A lone enabled transform may do all of that itself (<see cref="AttentionMapTransform.Attend"/>).
/// The layer is a <c>Module&lt;AttentionInput, Tensor&gt;</c> so that its calls can be observed or changed with
/// <c>register_forward_pre_hook</c> and <c>register_forward_hook</c>. For incremental decoding it takes a
/// <see cref="KeyValueCache"/>: self-attention appends each step's keys and values to the cached ones, cross-attention
/// computes them from the context once; the maps of a step are its queries' rows of the full maps, transforms included.
/// </summary>
public sealed class MultiHeadAttention : nn.Module<AttentionInput, Tensor>
{
    public readonly Linear query;
    public readonly Linear key;
    public readonly Linear value;
    public readonly Linear output;
    private readonly Dropout attentionDropout;
    private readonly double attentionDropoutRate;

    /// <summary>Number of heads H.</summary>
    public int Heads { get; }
    /// <summary>Model width (H times the head width).</summary>
    public int Dim { get; }
    public int HeadDim => Dim / Heads;

    private readonly List<(string Name, AttentionMapTransform Transform)> mapTransforms = new();

    /// <summary>The attached map transforms (Coeff-Tuning's mixing, ...) in the order the maps pass through them.</summary>
    public IReadOnlyList<AttentionMapTransform> MapTransforms => mapTransforms.Select(t => t.Transform).ToList();

    /// <summary><see cref="MapTransforms"/> with the names they are registered under (their state-dict key segments).</summary>
    public IReadOnlyList<(string Name, AttentionMapTransform Transform)> NamedMapTransforms => mapTransforms.AsReadOnly();

    public MultiHeadAttention(int dim, int heads, int? contextDim = null, bool bias = true, double attentionDropout = 0.0)
        : base(nameof(MultiHeadAttention))
    {
        if (heads <= 0 || dim % heads != 0)
            throw new ArgumentException($"dim {dim} must be a positive multiple of heads {heads}");
        Dim = dim;
        Heads = heads;
        int kv = contextDim ?? dim;
        query = Linear(dim, dim, hasBias: bias);
        key = Linear(kv, dim, hasBias: bias);
        value = Linear(kv, dim, hasBias: bias);
        output = Linear(dim, dim, hasBias: bias);
        attentionDropoutRate = attentionDropout;
        this.attentionDropout = Dropout(attentionDropout);
        RegisterComponents();
    }

    /// <summary>
    /// Appends a map transform, registered as a submodule under <paramref name="name"/> (a state-dict key segment:
    /// Coeff-Tuning's alpha is <c>&lt;layer&gt;.mixing.alpha</c>). The maps pass through the transforms in the order
    /// they were attached. Names are unique within the layer, and a transform is attached once.
    /// </summary>
    public void AttachMapTransform(AttentionMapTransform transform, string name = "mixing")
    {
        ArgumentNullException.ThrowIfNull(transform);
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"a map transform name is a non-empty state-dict key segment without '.', got '{name}'", nameof(name));
        if (mapTransforms.Any(t => ReferenceEquals(t.Transform, transform)))
            throw new InvalidOperationException($"this {transform.GetType().Name} is already attached to the layer, as '{mapTransforms.First(t => ReferenceEquals(t.Transform, transform)).Name}'");
        if (named_children().Any(c => c.name == name))
            throw new InvalidOperationException($"this attention layer already has a submodule named '{name}' " +
                $"(map transforms: {(mapTransforms.Count == 0 ? "none" : string.Join(", ", mapTransforms.Select(t => t.Name)))}); map transform names must be unique");
        register_module(name, transform);
        mapTransforms.Add((name, transform));
    }

    /// <summary>
    /// Runs the layer through <c>call</c>, so registered forward hooks see (and may change) this call; this is the
    /// entry point models use. x: (B, Nq, D). context: (B, Nk, Dc) for cross-attention, null for self-attention.
    /// keyPaddingMask: (B, Nk), nonzero/true where a key is a real token, zero/false where it is padding; with a cache,
    /// Nk counts the cached keys too (see <see cref="KeyValueCache"/>).
    /// </summary>
    public Tensor forward(Tensor x, Tensor? context = null, Tensor? keyPaddingMask = null, bool causal = false, KeyValueCache? cache = null) =>
        call(new AttentionInput(x, context, keyPaddingMask, causal, cache));

    /// <summary>The layer itself, without hooks (TorchSharp's convention: <c>call</c> runs hooks, <c>forward</c> does not).</summary>
    public override Tensor forward(AttentionInput input)
    {
        var (x, context, keyPaddingMask, causal, cache) = input;
        using var scope = NewDisposeScope();
        long b = x.shape[0], nq = x.shape[1];
        var q = SplitHeads(query.call(x), b, nq);
        var (k, v, padding) = KeysAndValues(x, context, keyPaddingMask, cache);
        long nk = k.shape[2];
        var mask = AdditiveMask(padding, causal, nq, nk, q.dtype, q.device);

        Tensor heads;
        var enabled = mapTransforms.Select(t => t.Transform).Where(t => t.Enabled).ToList();
        bool dropout = training && attentionDropoutRate > 0;
        if (enabled.Count == 0)
            heads = nn.functional.scaled_dot_product_attention(q, k, v, mask, dropout ? attentionDropoutRate : 0.0, false);
        else if (enabled.Count == 1 && !dropout && enabled[0].Attend(q, k, v, mask) is { } attended)
            heads = attended;
        else
            heads = matmul(TransformedMaps(q, k, mask, enabled, dropout), v);
        var merged = heads.transpose(1, 2).reshape(b, nq, Dim);
        return output.call(merged).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// This call's keys and values (B, H, Nk, dh) and the key padding mask that applies to them. Without a cache they
    /// come from the context, or from x; with one, a cross-attention layer computes them from the context on its first
    /// step and reuses them (with the context's mask, unless the step passes one), and a self-attention layer appends x's.
    /// </summary>
    private (Tensor Keys, Tensor Values, Tensor? Padding) KeysAndValues(Tensor x, Tensor? context, Tensor? padding, KeyValueCache? cache)
    {
        var entry = cache?.For(this);
        if (entry is { FromContext: true })
        {
            if (context is not null && (context.shape[0] != entry.Keys.shape[0] || context.shape[1] != entry.Length))
                throw new InvalidOperationException($"the cache holds this layer's keys of a context of {entry.Keys.shape[0]} x {entry.Length} tokens, " +
                    $"this step passes {context.shape[0]} x {context.shape[1]}; clear the cache before decoding another batch");
            padding ??= entry.KeyPaddingMask;
            CheckPadding(padding, entry.Length);
            return (entry.Keys, entry.Values, padding);
        }
        if (entry is not null && context is not null)
            throw new InvalidOperationException("the cache holds this layer's self-attention keys, and this step passes a context; " +
                "a cross-attention layer gets its context on its first cached step");
        var src = context ?? x;
        long b = src.shape[0], n = src.shape[1];
        CheckPadding(padding, n + (entry?.Length ?? 0));
        var k = SplitHeads(key.call(src), b, n);
        var v = SplitHeads(value.call(src), b, n);
        if (cache is null) return (k, v, padding);
        if (context is not null)
        {
            cache.SetContext(this, k, v, padding);
            return (k, v, padding);
        }
        var (allKeys, allValues) = cache.Append(this, k, v);
        return (allKeys, allValues, padding);
    }

    private static void CheckPadding(Tensor? padding, long keys)
    {
        if (padding is not null && (padding.dim() != 2 || padding.shape[1] != keys))
            throw new ArgumentException($"the key padding mask is [{string.Join(", ", padding.shape)}]; it needs one column for each of the {keys} keys " +
                "(with a cache: the cached keys, then this step's)");
    }

    /// <summary>The post-softmax, post-mask maps F, (B, H, Nq, Nk); rows sum to 1.</summary>
    public static Tensor AttentionMaps(Tensor q, Tensor k, Tensor? additiveMask)
    {
        // Scaling q, not the scores, saves a pass over the (B, H, Nq, Nk) tensor. The scores' handle is
        // released here, so they are freed as soon as softmax is done with them (autograd keeps its own
        // reference only where a backward pass needs one).
        using var scaled = q.mul(1.0 / Math.Sqrt(q.shape[^1]));
        using var scores = matmul(scaled, k.transpose(-2, -1));
        if (additiveMask is not null) scores.add_(additiveMask);
        return scores.softmax(-1);
    }

    /// <summary>The maps through every transform in order, then attention dropout when <paramref name="dropout"/>.</summary>
    private Tensor TransformedMaps(Tensor q, Tensor k, Tensor? mask, IReadOnlyList<AttentionMapTransform> transforms, bool dropout)
    {
        var maps = AttentionMaps(q, k, mask);
        foreach (var transform in transforms)
            maps = Next(maps, transform.call(maps));
        return dropout ? Next(maps, attentionDropout.call(maps)) : maps;

        // Each intermediate (B, H, Nq, Nk) handle is released once the next step has its result, so without autograd
        // only two such tensors live at a time (autograd keeps its own references where backward needs them).
        static Tensor Next(Tensor previous, Tensor next)
        {
            if (!ReferenceEquals(previous, next)) previous.Dispose();
            return next;
        }
    }

    private Tensor SplitHeads(Tensor t, long b, long n) => t.view(b, n, Heads, HeadDim).transpose(1, 2);

    /// <summary>
    /// An additive mask broadcastable to (B, H, Nq, Nk): 0 where attention is allowed, the most
    /// negative finite value where it is not, so softmax gives masked keys exactly zero weight.
    /// </summary>
    public static Tensor? AdditiveMask(Tensor? keyPaddingMask, bool causal, long nq, long nk, ScalarType dtype, Device device)
    {
        if (keyPaddingMask is null && !causal) return null;
        double neg = dtype == ScalarType.Float64 ? double.MinValue : float.MinValue;
        Tensor? mask = null;
        if (keyPaddingMask is not null)
        {
            var keep = keyPaddingMask.to(device).to_type(ScalarType.Bool);
            mask = zeros(keep.shape, dtype, device).masked_fill(keep.logical_not(), neg)
                .view(keep.shape[0], 1, 1, nk);
        }
        if (causal)
        {
            var upper = ones(nq, nk, ScalarType.Bool, device).triu(nk - nq + 1);
            var c = zeros(nq, nk, dtype, device).masked_fill(upper, neg);
            mask = mask is null ? c : (mask + c).clamp_min(neg);
        }
        return mask;
    }
}
