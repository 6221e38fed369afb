using System.Text.Json;

namespace CoeffTune.Models;

/// <summary>
/// Shape and special tokens of a BART model, named as Hugging Face's <c>config.json</c> names them. Defaults:
/// facebook/bart-base (d_model 768, 6 + 6 layers, 12 heads, FFN 3072, 1024 positions, vocabulary 50,265).
/// Immutable; <see cref="Validate"/> names the bad value.
/// </summary>
public sealed record BartConfig
{
    public int VocabSize { get; init; } = 50265;
    public int DModel { get; init; } = 768;
    public int EncoderLayers { get; init; } = 6;
    public int DecoderLayers { get; init; } = 6;
    public int EncoderAttentionHeads { get; init; } = 12;
    public int DecoderAttentionHeads { get; init; } = 12;
    public int EncoderFfnDim { get; init; } = 3072;
    public int DecoderFfnDim { get; init; } = 3072;
    /// <summary>Positions the model reads; its position tables have two rows more (BART's offset).</summary>
    public int MaxPositionEmbeddings { get; init; } = 1024;
    public int PadTokenId { get; init; } = 1;
    public int BosTokenId { get; init; } = 0;
    public int EosTokenId { get; init; } = 2;
    public int DecoderStartTokenId { get; init; } = 2;
    /// <summary>Generation forces this token first when set (bart-large-cnn: 0, the BOS token).</summary>
    public int? ForcedBosTokenId { get; init; }
    /// <summary>Token embeddings are multiplied by sqrt(d_model) when true.</summary>
    public bool ScaleEmbedding { get; init; }
    /// <summary>"gelu" (exact, erf) or "relu".</summary>
    public string ActivationFunction { get; init; } = "gelu";
    public double Dropout { get; init; } = 0.1;
    public double AttentionDropout { get; init; }
    public double ActivationDropout { get; init; }
    /// <summary>Standard deviation of the normal initialisation of fresh weights (init_std).</summary>
    public double InitStd { get; init; } = 0.02;
    /// <summary>BART's LayerNorms are PyTorch's defaults.</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>BART's learned positions start at row 2 (fairseq kept two rows for padding).</summary>
    public const int PositionOffset = 2;

    public static BartConfig Base { get; } = new();

    public BartConfig Validate()
    {
        void Positive(int v, string name)
        {
            if (v <= 0) throw new ArgumentOutOfRangeException(name, v, $"BART {name} must be positive, got {v}");
        }
        Positive(VocabSize, "vocab_size");
        Positive(DModel, "d_model");
        Positive(EncoderLayers, "encoder_layers");
        Positive(DecoderLayers, "decoder_layers");
        Positive(EncoderAttentionHeads, "encoder_attention_heads");
        Positive(DecoderAttentionHeads, "decoder_attention_heads");
        Positive(EncoderFfnDim, "encoder_ffn_dim");
        Positive(DecoderFfnDim, "decoder_ffn_dim");
        Positive(MaxPositionEmbeddings, "max_position_embeddings");
        if (DModel % EncoderAttentionHeads != 0)
            throw new ArgumentException($"BART d_model {DModel} is not a multiple of encoder_attention_heads {EncoderAttentionHeads}");
        if (DModel % DecoderAttentionHeads != 0)
            throw new ArgumentException($"BART d_model {DModel} is not a multiple of decoder_attention_heads {DecoderAttentionHeads}");
        foreach (var (id, name) in new[] { (PadTokenId, "pad_token_id"), (BosTokenId, "bos_token_id"), (EosTokenId, "eos_token_id"),
                     (DecoderStartTokenId, "decoder_start_token_id"), (ForcedBosTokenId ?? 0, "forced_bos_token_id") })
            if (id < 0 || id >= VocabSize)
                throw new ArgumentOutOfRangeException(name, id, $"BART {name} {id} is not an id of the vocabulary of {VocabSize}");
        if (ActivationFunction is not ("gelu" or "relu"))
            throw new ArgumentException($"BART activation_function '{ActivationFunction}' is not supported; gelu or relu");
        foreach (var (p, name) in new[] { (Dropout, "dropout"), (AttentionDropout, "attention_dropout"), (ActivationDropout, "activation_dropout") })
            if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(name, p, $"BART {name} must be in [0, 1), got {p}");
        return this;
    }

    /// <summary>
    /// Reads Hugging Face's config.json of a BART model. The sizes must be there (a missing one is an error naming it);
    /// special tokens, dropout and scale_embedding default to BartConfig's. Pre-norm variants (mBART's
    /// normalize_before, add_final_layer_norm) are refused: this is BART's post-norm layer.
    /// </summary>
    public static BartConfig FromJson(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no config.json; a BART checkpoint needs one for its head counts", path);
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            root = doc.RootElement.Clone();
        }
        catch (JsonException e) { throw new InvalidDataException($"{path} is not valid JSON: {e.Message}", e); }
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object");

        int Required(string key) => Int(key) ?? throw new InvalidDataException($"{path}: missing '{key}' (an integer)");
        int? Int(string key)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i
                : throw new InvalidDataException($"{path}: '{key}' is {v.GetRawText()}, expected an integer");
        }
        double? Double(string key)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw new InvalidDataException($"{path}: '{key}' is {v.GetRawText()}, expected a number");
        }
        bool? Bool(string key)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind switch
            {
                JsonValueKind.True => true, JsonValueKind.False => false,
                _ => throw new InvalidDataException($"{path}: '{key}' is {v.GetRawText()}, expected true or false"),
            };
        }
        if (root.TryGetProperty("model_type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() != "bart")
            throw new InvalidDataException($"{path}: model_type is '{type.GetString()}', not 'bart'");
        if (Bool("normalize_before") == true || Bool("add_final_layer_norm") == true)
            throw new InvalidDataException($"{path}: normalize_before/add_final_layer_norm is true (a pre-norm variant such as mBART); this is BART's post-norm model");
        var d = new BartConfig();
        string activation = root.TryGetProperty("activation_function", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()! : d.ActivationFunction;
        try
        {
            return new BartConfig
            {
                VocabSize = Required("vocab_size"),
                DModel = Required("d_model"),
                EncoderLayers = Required("encoder_layers"),
                DecoderLayers = Required("decoder_layers"),
                EncoderAttentionHeads = Required("encoder_attention_heads"),
                DecoderAttentionHeads = Required("decoder_attention_heads"),
                EncoderFfnDim = Required("encoder_ffn_dim"),
                DecoderFfnDim = Required("decoder_ffn_dim"),
                MaxPositionEmbeddings = Required("max_position_embeddings"),
                PadTokenId = Int("pad_token_id") ?? d.PadTokenId,
                BosTokenId = Int("bos_token_id") ?? d.BosTokenId,
                EosTokenId = Int("eos_token_id") ?? d.EosTokenId,
                DecoderStartTokenId = Int("decoder_start_token_id") ?? d.DecoderStartTokenId,
                ForcedBosTokenId = Int("forced_bos_token_id"),
                ScaleEmbedding = Bool("scale_embedding") ?? false,
                ActivationFunction = activation,
                Dropout = Double("dropout") ?? d.Dropout,
                AttentionDropout = Double("attention_dropout") ?? d.AttentionDropout,
                ActivationDropout = Double("activation_dropout") ?? d.ActivationDropout,
                InitStd = Double("init_std") ?? d.InitStd,
            }.Validate();
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message.Split(" (Parameter")[0]}", e); }
    }

    /// <summary>The config.json fields Hugging Face's BartConfig reads, for writing a checkpoint folder.</summary>
    public Dictionary<string, object?> ToJson() => new()
    {
        ["model_type"] = "bart", ["architectures"] = new[] { "BartForConditionalGeneration" },
        ["vocab_size"] = VocabSize, ["d_model"] = DModel, ["encoder_layers"] = EncoderLayers, ["decoder_layers"] = DecoderLayers,
        ["encoder_attention_heads"] = EncoderAttentionHeads, ["decoder_attention_heads"] = DecoderAttentionHeads,
        ["encoder_ffn_dim"] = EncoderFfnDim, ["decoder_ffn_dim"] = DecoderFfnDim, ["max_position_embeddings"] = MaxPositionEmbeddings,
        ["pad_token_id"] = PadTokenId, ["bos_token_id"] = BosTokenId, ["eos_token_id"] = EosTokenId,
        ["decoder_start_token_id"] = DecoderStartTokenId, ["forced_bos_token_id"] = ForcedBosTokenId, ["scale_embedding"] = ScaleEmbedding,
        ["activation_function"] = ActivationFunction, ["dropout"] = Dropout, ["attention_dropout"] = AttentionDropout,
        ["activation_dropout"] = ActivationDropout, ["init_std"] = InitStd, ["is_encoder_decoder"] = true,
    };
}
