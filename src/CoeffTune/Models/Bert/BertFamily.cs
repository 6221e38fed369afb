using CoeffTune.Checkpoints;
using CoeffTune.Data;

namespace CoeffTune.Models;

/// <summary>The BERT family (BERT, MiniLM, arctic-embed): <see cref="BertClassifier"/> and its Hugging Face names.</summary>
public static class BertFamily
{
    private static (string, string)[] Pairs(string prefix) => new[]
    {
        ("embeddings.norm", $"{prefix}embeddings.LayerNorm"),
        ("embeddings.word_embeddings", $"{prefix}embeddings.word_embeddings"),
        ("embeddings.position_embeddings", $"{prefix}embeddings.position_embeddings"),
        ("embeddings.token_type_embeddings", $"{prefix}embeddings.token_type_embeddings"),
        ("embeddings", $"{prefix}embeddings"),
        ("layers.{i}.attention.query", $"{prefix}encoder.layer.{{i}}.attention.self.query"),
        ("layers.{i}.attention.key", $"{prefix}encoder.layer.{{i}}.attention.self.key"),
        ("layers.{i}.attention.value", $"{prefix}encoder.layer.{{i}}.attention.self.value"),
        ("layers.{i}.attention.output", $"{prefix}encoder.layer.{{i}}.attention.output.dense"),
        // The maps are made in BertSelfAttention: the attention module's own state (Coeff-Tuning's alpha) goes there.
        ("layers.{i}.attention", $"{prefix}encoder.layer.{{i}}.attention.self"),
        ("layers.{i}.attention_norm", $"{prefix}encoder.layer.{{i}}.attention.output.LayerNorm"),
        ("layers.{i}.intermediate", $"{prefix}encoder.layer.{{i}}.intermediate.dense"),
        ("layers.{i}.output", $"{prefix}encoder.layer.{{i}}.output.dense"),
        ("layers.{i}.output_norm", $"{prefix}encoder.layer.{{i}}.output.LayerNorm"),
        ("layers.{i}", $"{prefix}encoder.layer.{{i}}"),
        ("pooler", $"{prefix}pooler.dense"),
        ("classifier", "classifier"),
    };

    public static ModelFamily Definition { get; } = new("bert",
        new[]
        {
            // BertForSequenceClassification, as PEFT names a sequence-classification adapter's tensors.
            new NameMap("huggingface", Pairs("bert.")),
            // BertModel, for adapters trained on the bare encoder.
            new NameMap("huggingface-base", Pairs("")),
        },
        Array.Empty<FusedProjection>(), PeftTaskType: "SEQ_CLS",
        new Dictionary<string, string>
        {
            ["minilm"] = "sentence-transformers/all-MiniLM-L6-v2",
            ["arctic-xs"] = "Snowflake/snowflake-arctic-embed-xs",
        })
    {
        HeadModule = "classifier",
        Classifies = TaskKind.Text,
        LoadClassifier = Load,
    };

    /// <summary>A BERT-family asset ("minilm", "arctic-xs") or checkpoint file, with its tokenizer.</summary>
    private static BaseModel Load(BaseModelRequest r)
    {
        var bert = PretrainedModels.LoadBert(r.Name, r.Classes, r.Heads, maxLength: r.MaxTokens, cache: r.Cache, log: r.Log, pooling: r.Pooling);
        return new BaseModel(bert.Model, new BertInputs(bert.Tokenizer), bert.Tokenizer);
    }
}
