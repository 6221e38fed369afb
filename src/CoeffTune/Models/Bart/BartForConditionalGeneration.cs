using CoeffTune.Attention;
using CoeffTune.Generation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CoeffTune.Models;

/// <summary>
/// Post-norm encoder layer: norm(x + self_attn(x)), then norm(h + fc2(act(fc1(h)))), as transformers' BartEncoderLayer.
/// </summary>
public sealed class BartEncoderLayer : nn.Module
{
    public readonly MultiHeadAttention self_attn;
    public readonly LayerNorm self_attn_layer_norm;
    public readonly Linear fc1;
    public readonly Linear fc2;
    public readonly LayerNorm final_layer_norm;
    private readonly BartConfig config;

    public BartEncoderLayer(BartConfig c) : base(nameof(BartEncoderLayer))
    {
        config = c;
        self_attn = new MultiHeadAttention(c.DModel, c.EncoderAttentionHeads, attentionDropout: c.AttentionDropout);
        self_attn_layer_norm = LayerNorm(c.DModel, c.LayerNormEps);
        fc1 = Linear(c.DModel, c.EncoderFfnDim);
        fc2 = Linear(c.EncoderFfnDim, c.DModel);
        final_layer_norm = LayerNorm(c.DModel, c.LayerNormEps);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var h = self_attn_layer_norm.call(x + BartLayers.Dropout(self_attn.forward(x, keyPaddingMask: mask), config.Dropout, training));
        var f = BartLayers.FeedForward(h, fc1, fc2, config, training);
        return final_layer_norm.call(h + f).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Post-norm decoder layer, as transformers' BartDecoderLayer: causal self-attention, cross-attention over the
/// encoder's states, feed-forward, each followed by its residual and LayerNorm.
/// </summary>
public sealed class BartDecoderLayer : nn.Module
{
    public readonly MultiHeadAttention self_attn;
    public readonly LayerNorm self_attn_layer_norm;
    public readonly MultiHeadAttention encoder_attn;
    public readonly LayerNorm encoder_attn_layer_norm;
    public readonly Linear fc1;
    public readonly Linear fc2;
    public readonly LayerNorm final_layer_norm;
    private readonly BartConfig config;

    public BartDecoderLayer(BartConfig c) : base(nameof(BartDecoderLayer))
    {
        config = c;
        self_attn = new MultiHeadAttention(c.DModel, c.DecoderAttentionHeads, attentionDropout: c.AttentionDropout);
        self_attn_layer_norm = LayerNorm(c.DModel, c.LayerNormEps);
        encoder_attn = new MultiHeadAttention(c.DModel, c.DecoderAttentionHeads, attentionDropout: c.AttentionDropout);
        encoder_attn_layer_norm = LayerNorm(c.DModel, c.LayerNormEps);
        fc1 = Linear(c.DModel, c.DecoderFfnDim);
        fc2 = Linear(c.DecoderFfnDim, c.DModel);
        final_layer_norm = LayerNorm(c.DModel, c.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>x: (B, T, D), the new positions when <paramref name="cache"/> holds earlier ones.</summary>
    public Tensor forward(Tensor x, Tensor encoderStates, Tensor? encoderMask, Tensor? decoderMask, KeyValueCache? cache)
    {
        using var scope = NewDisposeScope();
        var h = self_attn_layer_norm.call(x + BartLayers.Dropout(
            self_attn.forward(x, keyPaddingMask: decoderMask, causal: true, cache: cache), config.Dropout, training));
        h = encoder_attn_layer_norm.call(h + BartLayers.Dropout(
            encoder_attn.forward(h, context: encoderStates, keyPaddingMask: encoderMask, cache: cache), config.Dropout, training));
        var f = BartLayers.FeedForward(h, fc1, fc2, config, training);
        return final_layer_norm.call(h + f).MoveToOuterDisposeScope();
    }
}

/// <summary>Token embeddings (given) plus learned positions from row 2 on, LayerNorm, then the encoder layers.</summary>
public sealed class BartEncoder : nn.Module
{
    public readonly Embedding embed_positions;
    public readonly LayerNorm layernorm_embedding;
    public readonly ModuleList<BartEncoderLayer> layers;
    private readonly BartConfig config;

    public BartEncoder(BartConfig c) : base(nameof(BartEncoder))
    {
        config = c;
        embed_positions = Embedding(c.MaxPositionEmbeddings + BartConfig.PositionOffset, c.DModel);
        layernorm_embedding = LayerNorm(c.DModel, c.LayerNormEps);
        layers = new ModuleList<BartEncoderLayer>(Enumerable.Range(0, c.EncoderLayers).Select(_ => new BartEncoderLayer(c)).ToArray());
        RegisterComponents();
    }

    public Tensor forward(Tensor tokenEmbeddings, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var x = tokenEmbeddings + embed_positions.call(BartLayers.Positions(tokenEmbeddings, 0, config));
        x = BartLayers.Dropout(layernorm_embedding.call(x), config.Dropout, training);
        foreach (var layer in layers) x = layer.forward(x, mask);
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>The decoder: token embeddings (given) plus positions after the cached ones, LayerNorm, then the decoder layers.</summary>
public sealed class BartDecoder : nn.Module
{
    public readonly Embedding embed_positions;
    public readonly LayerNorm layernorm_embedding;
    public readonly ModuleList<BartDecoderLayer> layers;
    private readonly BartConfig config;

    public BartDecoder(BartConfig c) : base(nameof(BartDecoder))
    {
        config = c;
        embed_positions = Embedding(c.MaxPositionEmbeddings + BartConfig.PositionOffset, c.DModel);
        layernorm_embedding = LayerNorm(c.DModel, c.LayerNormEps);
        layers = new ModuleList<BartDecoderLayer>(Enumerable.Range(0, c.DecoderLayers).Select(_ => new BartDecoderLayer(c)).ToArray());
        RegisterComponents();
    }

    public Tensor forward(Tensor tokenEmbeddings, Tensor encoderStates, Tensor? encoderMask, Tensor? decoderMask = null, KeyValueCache? cache = null)
    {
        using var scope = NewDisposeScope();
        // With a cache the new positions follow the cached ones, which every self-attention layer holds alike.
        long past = cache?.For(layers[0].self_attn)?.Length ?? 0;
        var x = tokenEmbeddings + embed_positions.call(BartLayers.Positions(tokenEmbeddings, past, config));
        x = BartLayers.Dropout(layernorm_embedding.call(x), config.Dropout, training);
        foreach (var layer in layers) x = layer.forward(x, encoderStates, encoderMask, decoderMask, cache);
        return x.MoveToOuterDisposeScope();
    }
}

internal static class BartLayers
{
    public static Tensor Dropout(Tensor x, double p, bool training) => training && p > 0 ? nn.functional.dropout(x, p, training) : x;

    public static Tensor FeedForward(Tensor h, Linear fc1, Linear fc2, BartConfig c, bool training)
    {
        var a = fc1.call(h);
        a = c.ActivationFunction == "relu" ? nn.functional.relu(a) : nn.functional.gelu(a);
        return Dropout(fc2.call(Dropout(a, c.ActivationDropout, training)), c.Dropout, training);
    }

    /// <summary>Rows of the position table for positions past .. past+T-1: BART's offset of 2 added.</summary>
    public static Tensor Positions(Tensor embeddings, long past, BartConfig c)
    {
        long t = embeddings.shape[1];
        if (past + t > c.MaxPositionEmbeddings)
            throw new ArgumentException($"BART reads at most {c.MaxPositionEmbeddings} positions (max_position_embeddings), this sequence needs {past + t}");
        return arange(past + BartConfig.PositionOffset, past + t + BartConfig.PositionOffset, ScalarType.Int64, embeddings.device).unsqueeze(0);
    }
}

/// <summary>
/// BART with its language-model head, as transformers' BartForConditionalGeneration: a shared token embedding read
/// by the encoder, the decoder and (tied) the LM head, whose logits get <c>final_logits_bias</c> added. Every
/// attention is this library's <see cref="MultiHeadAttention"/> (encoder self, decoder causal self, decoder cross),
/// so Coeff-Tuning attaches to each kind. Field names are transformers' where they can be
/// (<c>encoder.layers.{i}.self_attn_layer_norm</c>, <c>fc1</c>, ...); the attention projections are
/// <c>query/key/value/output</c> here and <c>q_proj/k_proj/v_proj/out_proj</c> there (<see cref="BartFamily"/>).
/// </summary>
public sealed class BartForConditionalGeneration : nn.Module<Tensor, Tensor?, Tensor, Tensor>, ISeq2SeqModel
{
    public readonly Embedding shared;
    public readonly BartEncoder encoder;
    public readonly BartDecoder decoder;
    /// <summary>(1, V), added to the logits; a buffer, as in transformers.</summary>
    public readonly Tensor final_logits_bias;

    public BartConfig Config { get; }
    public const string Architecture = "bart";
    private readonly double embedScale;

    public BartForConditionalGeneration(BartConfig config) : base(nameof(BartForConditionalGeneration))
    {
        Config = config.Validate();
        shared = Embedding(config.VocabSize, config.DModel, padding_idx: config.PadTokenId);
        encoder = new BartEncoder(config);
        decoder = new BartDecoder(config);
        final_logits_bias = zeros(1, config.VocabSize);
        embedScale = config.ScaleEmbedding ? Math.Sqrt(config.DModel) : 1.0;
        RegisterComponents();
        InitWeights();
    }

    /// <summary>transformers' initialisation: Linear and Embedding weights normal(0, init_std), biases zero, the padding row zero.</summary>
    private void InitWeights()
    {
        using var _ = no_grad();
        foreach (var (_, m) in named_modules())
        {
            if (m is Linear l)
            {
                l.weight!.normal_(0, Config.InitStd);
                l.bias?.zero_();
            }
            else if (m is Embedding e)
            {
                e.weight!.normal_(0, Config.InitStd);
            }
        }
        shared.weight![Config.PadTokenId].zero_();
    }

    public int DecoderStartTokenId => Config.DecoderStartTokenId;
    public int EosTokenId => Config.EosTokenId;
    public int PadTokenId => Config.PadTokenId;
    public int? ForcedBosTokenId => Config.ForcedBosTokenId;
    public int VocabSize => Config.VocabSize;

    private Tensor Embed(Tensor ids)
    {
        var e = shared.call(ids);
        return embedScale == 1.0 ? e : e * embedScale;
    }

    /// <summary>Encoder states (B, S, D); <paramref name="attentionMask"/> (B, S) 1 on real tokens.</summary>
    public Tensor Encode(Tensor inputIds, Tensor? attentionMask)
    {
        using var scope = NewDisposeScope();
        return encoder.forward(Embed(inputIds), attentionMask).MoveToOuterDisposeScope();
    }

    /// <summary>Decoder states (B, T, D) of decoder ids (B, T) (the new positions when <paramref name="cache"/> holds earlier ones).</summary>
    public Tensor Decode(Tensor decoderIds, Tensor encoderStates, Tensor? encoderMask, Tensor? decoderMask = null, KeyValueCache? cache = null)
    {
        using var scope = NewDisposeScope();
        return decoder.forward(Embed(decoderIds), encoderStates, encoderMask, decoderMask, cache).MoveToOuterDisposeScope();
    }

    /// <summary>The tied LM head: states (…, D) to logits (…, V), final_logits_bias added.</summary>
    public Tensor Logits(Tensor decoderStates)
    {
        using var scope = NewDisposeScope();
        return (nn.functional.linear(decoderStates, shared.weight!) + final_logits_bias).MoveToOuterDisposeScope();
    }

    public Tensor DecodeLogits(Tensor decoderIds, Tensor encoderStates, Tensor? encoderMask, KeyValueCache? cache = null)
    {
        using var scope = NewDisposeScope();
        return Logits(Decode(decoderIds, encoderStates, encoderMask, null, cache)).MoveToOuterDisposeScope();
    }

    /// <summary>Teacher-forced logits (B, T, V): source ids and mask (B, S), decoder input ids (B, T).</summary>
    public override Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor decoderInputIds)
    {
        using var scope = NewDisposeScope();
        var states = Encode(inputIds, attentionMask);
        return DecodeLogits(decoderInputIds, states, attentionMask).MoveToOuterDisposeScope();
    }

    /// <summary>Labels shifted one to the right behind the decoder start token, -100 (ignored positions) replaced by pad: the decoder's input in teacher forcing.</summary>
    public static Tensor ShiftTokensRight(Tensor labels, int padTokenId, int decoderStartTokenId)
    {
        using var scope = NewDisposeScope();
        var start = full(labels.shape[0], 1, decoderStartTokenId, ScalarType.Int64, labels.device);
        var shifted = cat(new[] { start, labels.narrow(1, 0, labels.shape[1] - 1).to_type(ScalarType.Int64) }, 1);
        return shifted.masked_fill(shifted.eq(-100), padTokenId).MoveToOuterDisposeScope();
    }
}
