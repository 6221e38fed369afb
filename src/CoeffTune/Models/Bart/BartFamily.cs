namespace CoeffTune.Models;

/// <summary>
/// The BART family: <see cref="BartForConditionalGeneration"/> and its Hugging Face names. Adapters are written in
/// BartForConditionalGeneration's layout (everything under "model." but final_logits_bias and lm_head), so a LoRA
/// on the encoder's first query is "base_model.model.model.encoder.layers.0.self_attn.q_proj.lora_A.weight", as
/// Hugging Face PEFT names it.
/// </summary>
public static class BartFamily
{
    /// <summary>The three kinds of attention, each choosable by a target pattern (Coeff-Tuning's <c>target_modules</c>).</summary>
    public static IReadOnlyDictionary<string, string> AttentionKinds { get; } = new Dictionary<string, string>
    {
        ["encoder-self"] = @"re:encoder\.layers\.\d+\.self_attn",
        ["decoder-self"] = @"re:decoder\.layers\.\d+\.self_attn",
        ["decoder-cross"] = @"re:decoder\.layers\.\d+\.encoder_attn",
    };

    /// <summary>The kind of attention at a module path of this model ("encoder-self", "decoder-self", "decoder-cross"), or null.</summary>
    public static string? KindOf(string path) =>
        AttentionKinds.FirstOrDefault(k => Methods.Targets.Matches(k.Value, path)).Key;

    private static (string, string)[] Pairs(string prefix)
    {
        var pairs = new List<(string, string)> { ("shared", $"{prefix}shared") };
        foreach (var part in new[] { "encoder", "decoder" })
        {
            pairs.Add(($"{part}.embed_positions", $"{prefix}{part}.embed_positions"));
            pairs.Add(($"{part}.layernorm_embedding", $"{prefix}{part}.layernorm_embedding"));
            var attentions = part == "encoder" ? new[] { "self_attn" } : new[] { "self_attn", "encoder_attn" };
            foreach (var attn in attentions)
            {
                foreach (var (ours, theirs) in new[] { ("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj"), ("output", "out_proj") })
                    pairs.Add(($"{part}.layers.{{i}}.{attn}.{ours}", $"{prefix}{part}.layers.{{i}}.{attn}.{theirs}"));
                // The attention module itself makes the maps: Coeff-Tuning's alpha is "<attn>.mixing.alpha" in both layouts.
                pairs.Add(($"{part}.layers.{{i}}.{attn}", $"{prefix}{part}.layers.{{i}}.{attn}"));
                pairs.Add(($"{part}.layers.{{i}}.{attn}_layer_norm", $"{prefix}{part}.layers.{{i}}.{attn}_layer_norm"));
            }
            foreach (var m in new[] { "fc1", "fc2", "final_layer_norm" })
                pairs.Add(($"{part}.layers.{{i}}.{m}", $"{prefix}{part}.layers.{{i}}.{m}"));
            pairs.Add(($"{part}.layers.{{i}}", $"{prefix}{part}.layers.{{i}}"));
        }
        pairs.Add(("final_logits_bias", "final_logits_bias"));
        return pairs.ToArray();
    }

    public static ModelFamily Definition { get; } = new("bart",
        new[]
        {
            // BartForConditionalGeneration: the model under "model.", the logits bias and LM head beside it.
            new NameMap("huggingface", Pairs("model.")),
            // BartModel, as a bare encoder-decoder's checkpoint names its tensors.
            new NameMap("huggingface-base", Pairs("")),
        },
        Array.Empty<FusedProjection>(), PeftTaskType: "SEQ_2_SEQ_LM", new Dictionary<string, string>());
}
