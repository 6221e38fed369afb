using CoeffTune.Data;

namespace CoeffTune.Models;

/// <summary>
/// A projection that another layout stores fused, e.g. timm's attn.qkv, which this library's model keeps as
/// three Linears: the fused module's output rows are the parts' outputs, stacked in order.
/// </summary>
public sealed record FusedProjection(string Theirs, IReadOnlyList<string> OursParts);

/// <summary>
/// What the library knows of one model family: its tag, how its module paths read in the layouts of the ecosystem
/// (the first is the one adapters are written in: Hugging Face transformers' task model, e.g.
/// BertForSequenceClassification), projections other layouts fuse, the Hugging Face PEFT task type of its
/// classifier, the Hugging Face ids of the pretrained checkpoints the library fetches, and, for a family with a
/// classifier, how to build it from a name with its preprocessing (<see cref="LoadClassifier"/>).
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

    /// <summary>Our module name of the classification head (a module to save), or null for a family without a classifier.</summary>
    public string? HeadModule { get; init; }

    /// <summary>The kind of task the family's classifier reads, or null for a family without a classifier.</summary>
    public TaskKind? Classifies { get; init; }

    /// <summary>
    /// Builds the family's base classifier from a name (asset, cache name or checkpoint path) with a fresh head,
    /// together with its preprocessing; null for a family without a classifier.
    /// </summary>
    public Func<BaseModelRequest, BaseModel>? LoadClassifier { get; init; }

    /// <summary>Builds the base classifier <paramref name="request"/> names; refuses a family without one.</summary>
    public BaseModel Load(BaseModelRequest request) => LoadClassifier is { } load
        ? load(request)
        : throw new NotSupportedException($"the {Name} family has no classifier");
}

/// <summary>The model families, one line each.</summary>
public static class ModelFamilies
{
    public static IReadOnlyList<ModelFamily> All { get; } = new[] { BertFamily.Definition, VitFamily.Definition, BartFamily.Definition };

    /// <summary>The family tagged <paramref name="architecture"/>, or null for a model the library has no layout for.</summary>
    public static ModelFamily? Find(string? architecture) => All.FirstOrDefault(f => f.Name == architecture);

    /// <summary>The family tagged <paramref name="architecture"/>; an unknown tag is an error naming the known ones.</summary>
    public static ModelFamily Get(string architecture) => Find(architecture)
        ?? throw new ArgumentException($"unknown architecture '{architecture}' ({string.Join(", ", All.Select(f => f.Name))})", nameof(architecture));

    /// <summary>The family whose classifier the library picks for a task of <paramref name="kind"/> when no model is named.</summary>
    public static ModelFamily ForTask(TaskKind kind) => All.FirstOrDefault(f => f.Classifies == kind && f.LoadClassifier is not null)
        ?? throw new NotSupportedException($"no model family classifies {kind.ToString().ToLowerInvariant()} tasks");
}
