using static TorchSharp.torch;

namespace CoeffTune.Attention;

/// <summary>
/// Keys and values kept between the steps of incremental decoding: one entry per <see cref="MultiHeadAttention"/>
/// layer, keyed by the layer itself, so a decoder passes one cache to all of its layers.
/// <list type="bullet">
/// <item>Self-attention (no context): each step's keys and values are appended to the layer's entry and the step
/// attends over all of them. The step's queries are the last positions, so a causal step sees every cached key and
/// the earlier ones of its own. A key padding mask then covers the cached and the new keys: (B, cached + Nq).</item>
/// <item>Cross-attention (a context on the first step): keys and values are computed from the context once, kept with
/// the context's key padding mask, and reused on later steps, which may pass the context again (it is not read)
/// or null, and a key padding mask or null (the kept one applies).</item>
/// </list>
/// Map transforms act on the maps of every step as on a full forward: the maps of a step are the rows of its queries.
/// The cache owns its tensors, outside every dispose scope; <see cref="Clear"/> or <see cref="Dispose"/> releases them.
/// It holds one batch of sequences: clear it before decoding another.
/// </summary>
public sealed class KeyValueCache : IDisposable
{
    private readonly Dictionary<MultiHeadAttention, Entry> entries = new(ReferenceEqualityComparer.Instance);

    /// <summary>One layer's cached keys and values. Its tensors stay valid until the layer's next step or <see cref="Clear"/>.</summary>
    public sealed class Entry
    {
        internal Entry(Tensor keys, Tensor values, Tensor? keyPaddingMask, bool fromContext)
        {
            Keys = keys;
            Values = values;
            KeyPaddingMask = keyPaddingMask;
            FromContext = fromContext;
        }

        /// <summary>(B, H, N, dh), the heads already split.</summary>
        public Tensor Keys { get; internal set; }
        /// <summary>(B, H, N, dh).</summary>
        public Tensor Values { get; internal set; }
        /// <summary>Cross-attention: the context's key padding mask (B, N) as booleans, true on real tokens; else null.</summary>
        public Tensor? KeyPaddingMask { get; internal set; }
        /// <summary>True for keys computed once from a context (cross-attention), false for keys that grow by step (self-attention).</summary>
        public bool FromContext { get; }
        /// <summary>N, the number of cached key positions.</summary>
        public long Length => Keys.shape[2];

        internal void Release()
        {
            Keys.Dispose();
            Values.Dispose();
            KeyPaddingMask?.Dispose();
        }
    }

    /// <summary>Number of layers with an entry.</summary>
    public int Count => entries.Count;

    /// <summary>The entry of <paramref name="layer"/>, or null before its first step.</summary>
    public Entry? For(MultiHeadAttention layer) => entries.GetValueOrDefault(layer);

    /// <summary>Appends a self-attention step's keys and values (B, H, n, dh); returns all of the layer's, cached then new.</summary>
    internal (Tensor Keys, Tensor Values) Append(MultiHeadAttention layer, Tensor keys, Tensor values)
    {
        if (!entries.TryGetValue(layer, out var entry))
        {
            entries[layer] = new Entry(Own(keys), Own(values), null, fromContext: false);
            return (keys, values);
        }
        if (entry.FromContext)
            throw new InvalidOperationException("the cache holds keys this layer computed from a context; a self-attention step cannot extend them");
        if (entry.Keys.shape[0] != keys.shape[0])
            throw new InvalidOperationException($"the cache holds keys of a batch of {entry.Keys.shape[0]} sequences, this step has {keys.shape[0]}; clear the cache before decoding another batch");
        var allKeys = cat(new[] { entry.Keys, keys }, 2);
        var allValues = cat(new[] { entry.Values, values }, 2);
        entry.Keys.Dispose();
        entry.Values.Dispose();
        entry.Keys = Own(allKeys);
        entry.Values = Own(allValues);
        return (allKeys, allValues);
    }

    /// <summary>Keeps a cross-attention layer's keys and values (B, H, Nk, dh) and its context's padding mask.</summary>
    internal void SetContext(MultiHeadAttention layer, Tensor keys, Tensor values, Tensor? keyPaddingMask)
    {
        if (entries.ContainsKey(layer))
            throw new InvalidOperationException("the cache already holds keys of this layer");
        var mask = keyPaddingMask?.to(keys.device).to_type(ScalarType.Bool).clone().DetachFromDisposeScope();
        entries[layer] = new Entry(Own(keys), Own(values), mask, fromContext: true);
    }

    /// <summary>
    /// Reorders the batch of every entry: sequence i continues what sequence <paramref name="indices"/>[i] was (B' ids
    /// of the B cached sequences, repeats allowed), as beam search does when it keeps the beams it extends.
    /// </summary>
    public void Reorder(Tensor indices)
    {
        using var scope = NewDisposeScope();
        foreach (var entry in entries.Values)
        {
            var idx = indices.to(entry.Keys.device).to_type(ScalarType.Int64);
            var keys = Own(entry.Keys.index_select(0, idx));
            var values = Own(entry.Values.index_select(0, idx));
            var mask = entry.KeyPaddingMask is { } m ? Own(m.index_select(0, idx)) : null;
            entry.Release();
            entry.Keys = keys;
            entry.Values = values;
            entry.KeyPaddingMask = mask;
        }
    }

    /// <summary>Releases every entry; the next step of each layer starts afresh.</summary>
    public void Clear()
    {
        foreach (var entry in entries.Values) entry.Release();
        entries.Clear();
    }

    public void Dispose() => Clear();

    /// <summary>A handle of the cache's own, which no dispose scope of the caller releases.</summary>
    private static Tensor Own(Tensor t) => t.alias().DetachFromDisposeScope();
}
