using CoeffTune.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CoeffTune.Models;

/// <summary>
/// How token states become one sentence vector. The first five are sentence-transformers' pooling modes
/// (<c>1_Pooling/config.json</c>); <see cref="Pooler"/> is BERT's own pooler (a dense layer and tanh on [CLS]),
/// which BertForSequenceClassification uses.
/// </summary>
public enum Pooling { Mean, Cls, Max, MeanSqrtLen, LastToken, Pooler }

/// <summary>Shape of a BERT-family encoder. Defaults: all-MiniLM-L6-v2.</summary>
public sealed record BertConfig
{
    public int VocabSize { get; init; } = 30522;
    public int Dim { get; init; } = 384;
    public int Depth { get; init; } = 6;
    public int Heads { get; init; } = 12;
    public int IntermediateDim { get; init; } = 1536;
    public int MaxPositions { get; init; } = 512;
    public int TypeVocabSize { get; init; } = 2;
    public double LayerNormEps { get; init; } = 1e-12;
    /// <summary>Whether the checkpoint has a pooler; it is built only for CLS pooling.</summary>
    public bool HasPooler { get; init; } = true;
    public Pooling Pooling { get; init; } = Pooling.Mean;
    public int Classes { get; init; } = 2;

    public static BertConfig MiniLM(int classes = 2) => new() { Classes = classes };

    /// <summary>BERT-base shape: 12 layers, 12 heads, 768 wide.</summary>
    public static BertConfig Base(int classes = 2) => new() { Dim = 768, Depth = 12, Heads = 12, IntermediateDim = 3072, Classes = classes };

    public BertConfig Validate()
    {
        if (Heads <= 0 || Dim % Heads != 0) throw new ArgumentException($"dim {Dim} must be a multiple of heads {Heads}");
        if (VocabSize <= 0 || Depth <= 0 || IntermediateDim <= 0 || MaxPositions <= 0 || Classes <= 0)
            throw new ArgumentException("vocab size, depth, intermediate dim, max positions and classes must be positive");
        return this;
    }
}

/// <summary>Word + position + token-type embeddings, then LayerNorm.</summary>
public sealed class BertEmbeddings : nn.Module
{
    public readonly Embedding word_embeddings;
    public readonly Embedding position_embeddings;
    public readonly Embedding token_type_embeddings;
    public readonly LayerNorm norm;

    public BertEmbeddings(BertConfig c) : base(nameof(BertEmbeddings))
    {
        word_embeddings = Embedding(c.VocabSize, c.Dim);
        position_embeddings = Embedding(c.MaxPositions, c.Dim);
        token_type_embeddings = Embedding(c.TypeVocabSize, c.Dim);
        norm = LayerNorm(c.Dim, c.LayerNormEps);
        RegisterComponents();
    }

    public Tensor forward(Tensor ids, Tensor? tokenTypes)
    {
        using var scope = NewDisposeScope();
        var positions = arange(ids.shape[1], ScalarType.Int64, ids.device).unsqueeze(0);
        var types = tokenTypes ?? zeros_like(ids);
        var x = word_embeddings.call(ids) + position_embeddings.call(positions) + token_type_embeddings.call(types);
        return norm.call(x).MoveToOuterDisposeScope();
    }
}

/// <summary>Post-LN BERT layer: norm(x + attn(x)), then norm(h + ffn(h)) with GELU.</summary>
public sealed class BertLayer : nn.Module
{
    public readonly MultiHeadAttention attention;
    public readonly LayerNorm attention_norm;
    public readonly Linear intermediate;
    public readonly Linear output;
    public readonly LayerNorm output_norm;

    public BertLayer(BertConfig c) : base(nameof(BertLayer))
    {
        attention = new MultiHeadAttention(c.Dim, c.Heads);
        attention_norm = LayerNorm(c.Dim, c.LayerNormEps);
        intermediate = Linear(c.Dim, c.IntermediateDim);
        output = Linear(c.IntermediateDim, c.Dim);
        output_norm = LayerNorm(c.Dim, c.LayerNormEps);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var h = attention_norm.call(x + attention.forward(x, keyPaddingMask: mask));
        var f = output.call(nn.functional.gelu(intermediate.call(h)));
        return output_norm.call(h + f).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A BERT-family encoder with a classification head. Field names follow Hugging Face's BertModel
/// where that is natural (embeddings.word_embeddings, ...); the attention block is
/// layers.{i}.attention.{query,key,value,output}. <see cref="Checkpoints.BertCheckpoint"/> maps
/// Hugging Face and ONNX names onto these.
/// </summary>
public sealed class BertClassifier : TransformerClassifier
{
    public readonly BertEmbeddings embeddings;
    public readonly ModuleList<BertLayer> layers;
    public readonly Linear? pooler;
    public readonly Linear classifier;

    public BertConfig Config { get; }
    public override string HeadName => "classifier";
    public override Linear Head => classifier;
    public override string Architecture => "bert";
    public override long SequenceLength(Batch batch) => batch.Inputs.shape[1];
    public override int LayerCount => layers.Count;
    public override int Width => Config.Dim;

    public BertClassifier(BertConfig config) : base(nameof(BertClassifier))
    {
        Config = config.Validate();
        embeddings = new BertEmbeddings(config);
        layers = new ModuleList<BertLayer>(Enumerable.Range(0, config.Depth).Select(_ => new BertLayer(config)).ToArray());
        // The pooler feeds only pooler pooling; otherwise it would be dead weight for every method.
        if (config.HasPooler && config.Pooling == Pooling.Pooler) pooler = Linear(config.Dim, config.Dim);
        classifier = Linear(config.Dim, config.Classes);
        RegisterComponents();
        BaseParameterCount = parameters().Sum(p => p.numel());
    }

    /// <summary>last_hidden_state (B, N, D).</summary>
    public Tensor Encode(Tensor ids, Tensor? attentionMask = null, Tensor? tokenTypes = null)
    {
        using var scope = NewDisposeScope();
        var x = embeddings.forward(ids, tokenTypes);
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            x = RunLayer(i, x, attentionMask, layer.forward);
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Mean of the token states over real tokens (sentence-transformers pooling).</summary>
    public static Tensor MeanPool(Tensor hidden, Tensor? attentionMask) => SentencePooling.Pool(hidden, attentionMask, Pooling.Mean);

    public override string PoolingName => SentencePooling.Name(Config.Pooling);

    /// <summary>The sentence vector of the model's pooling; <paramref name="promptLength"/> leading tokens are left out of mask-based pooling.</summary>
    public Tensor Pool(Tensor hidden, Tensor? attentionMask, int promptLength = 0)
    {
        if (Config.Pooling != Pooling.Pooler) return SentencePooling.Pool(hidden, attentionMask, Config.Pooling, promptLength);
        if (pooler is null) throw new InvalidOperationException("pooler pooling needs the checkpoint's pooler weights, and this model has none");
        using var scope = NewDisposeScope();
        return pooler.call(hidden.select(1, 0)).tanh().MoveToOuterDisposeScope();
    }

    public override Tensor Features(Batch batch)
    {
        using var scope = NewDisposeScope();
        var hidden = Encode(batch.Inputs, batch.AttentionMask, batch.TokenTypeIds);
        return Pool(hidden, batch.AttentionMask).MoveToOuterDisposeScope();
    }
}
