namespace CoeffTune.Data;

/// <summary>
/// Texts in memory with an int label each. <see cref="Groups"/>, when present, names the source each item
/// came from (e.g. the Brown document of a passage) so splits can keep a source on one side. Immutable.
/// </summary>
public sealed class TextDataset : ILabeledDataset
{
    private readonly string[] texts;
    private readonly int[] labels;
    private readonly string[]? groups;

    public string Name { get; }
    public IReadOnlyList<string> Texts => texts;
    public IReadOnlyList<int> Labels => labels;
    public IReadOnlyList<string> Classes { get; }
    public IReadOnlyList<string>? Groups => groups;
    public int Count => labels.Length;

    public TextDataset(string[] texts, int[] labels, IReadOnlyList<string> classes, string name = "texts", string[]? groups = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classes);
        if (texts.Length != labels.Length) throw new ArgumentException($"{name}: {texts.Length} texts but {labels.Length} labels");
        if (groups is not null && groups.Length != labels.Length) throw new ArgumentException($"{name}: {groups.Length} groups for {labels.Length} texts");
        DatasetChecks.Labels(labels, classes.Count, name);
        this.texts = texts;
        this.labels = labels;
        this.groups = groups;
        Classes = classes.ToArray();
        Name = name;
    }

    public TextDataset Subset(int[] indices, string? name = null)
    {
        DatasetChecks.Indices(indices, Count, Name);
        return new TextDataset(
            indices.Select(i => texts[i]).ToArray(),
            indices.Select(i => labels[i]).ToArray(),
            Classes, name ?? Name,
            groups is null ? null : indices.Select(i => groups[i]).ToArray());
    }

    public IEnumerable<int[]> Batches(int batchSize, int? shuffleSeed = null, bool dropLast = false) =>
        IndexBatches.Make(Count, batchSize, shuffleSeed, dropLast);

    public override string ToString() => $"{Name}: {Count} texts, {Classes.Count} classes";
}
