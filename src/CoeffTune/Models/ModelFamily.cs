namespace CoeffTune.Models;

/// <summary>
/// A projection that another layout stores fused, e.g. timm's attn.qkv, which this library's model keeps as
/// three Linears: the fused module's output rows are the parts' outputs, stacked in order.
/// </summary>
public sealed record FusedProjection(string Theirs, IReadOnlyList<string> OursParts);

/// <summary>
/// What the library knows of one model family besides its module: its tag, how its module paths read in the
/// layouts of the ecosystem (the first is the one adapters are written in: Hugging Face transformers' task model,
/// e.g. BertForSequenceClassification), projections other layouts fuse, the Hugging Face PEFT task type of its
/// classifier, and the Hugging Face ids of the pretrained checkpoints the library fetches.
/// </summary>
public sealed record ModelFamily(
    string Name,
    IReadOnlyList<NameMap> Layouts,
    IReadOnlyList<FusedProjection> Fused,
    string? PeftTaskType,
    IReadOnlyDictionary<string, string> HuggingFaceIds)
{
    /// <summary>The layout adapters are written in.</summary>
    public NameMap Written => Layouts[0];
}

/// <summary>The model families, one line each.</summary>
public static class ModelFamilies
{
    public static IReadOnlyList<ModelFamily> All { get; } = new[] { BertFamily.Definition, VitFamily.Definition, BartFamily.Definition };

    /// <summary>The family tagged <paramref name="architecture"/>, or null for a model the library has no layout for.</summary>
    public static ModelFamily? Find(string? architecture) => All.FirstOrDefault(f => f.Name == architecture);
}
