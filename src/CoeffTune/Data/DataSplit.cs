using System.Globalization;
using System.Text;
using System.Text.Json;

namespace CoeffTune.Data;

/// <summary>
/// A fixed split, VTAB-1k style: <see cref="Train"/> and <see cref="Validation"/> index the training pool
/// (800 + 200 by default), <see cref="Test"/> indexes the held-out test set. Written as JSON with the
/// dataset name, seed and sizes; the same seed and data give a byte-identical file.
/// </summary>
public sealed class DataSplit
{
    public const int FormatVersion = 1;

    public string Dataset { get; }
    public int Seed { get; }
    /// <summary>Number of items in the pool / test set the indices were drawn from (checked when applied).</summary>
    public int PoolSize { get; }
    public int TestPoolSize { get; }
    public IReadOnlyList<int> Train { get; }
    public IReadOnlyList<int> Validation { get; }
    public IReadOnlyList<int> Test { get; }

    public DataSplit(string dataset, int seed, int poolSize, int testPoolSize, int[] train, int[] validation, int[] test)
    {
        if (string.IsNullOrWhiteSpace(dataset)) throw new ArgumentException("split: dataset name is empty");
        DatasetChecks.Indices(train, poolSize, $"{dataset} split, train");
        DatasetChecks.Indices(validation, poolSize, $"{dataset} split, validation");
        DatasetChecks.Indices(test, testPoolSize, $"{dataset} split, test");
        if (train.Distinct().Count() != train.Length || validation.Distinct().Count() != validation.Length || test.Distinct().Count() != test.Length)
            throw new ArgumentException($"{dataset} split: an index repeats within a part");
        if (train.Intersect(validation).Any())
            throw new ArgumentException($"{dataset} split: train and validation share {train.Intersect(validation).Count()} indices");
        Dataset = dataset;
        Seed = seed;
        PoolSize = poolSize;
        TestPoolSize = testPoolSize;
        Train = train.ToArray();
        Validation = validation.ToArray();
        Test = test.ToArray();
    }

    /// <summary>
    /// Stratified train + validation drawn from <paramref name="pool"/> (first trainSize+validationSize
    /// items, then those split, both in class proportion); test = all of <paramref name="test"/>, or a
    /// stratified <paramref name="testSize"/> of it.
    /// </summary>
    public static DataSplit Create(ILabeledDataset pool, ILabeledDataset test, int seed, int trainSize = 800, int validationSize = 200, int? testSize = null, string? dataset = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trainSize);
        ArgumentOutOfRangeException.ThrowIfNegative(validationSize);
        if (trainSize + validationSize > pool.Count)
            throw new ArgumentException($"{pool.Name}: {trainSize} train + {validationSize} validation exceed the pool of {pool.Count}");
        int k = pool.Classes.Count;
        var both = Sampling.Stratified(pool.Labels, k, trainSize + validationSize, seed, pool.Name);
        // Split the drawn items by position so validation is stratified within them too.
        var drawnLabels = both.Select(i => pool.Labels[i]).ToArray();
        var valPositions = Sampling.Stratified(drawnLabels, k, validationSize, seed + 1, pool.Name);
        var isVal = new bool[both.Length];
        foreach (var p in valPositions) isVal[p] = true;
        var train = both.Where((_, p) => !isVal[p]).ToArray();
        var validation = both.Where((_, p) => isVal[p]).ToArray();
        var testIdx = testSize is int t
            ? Sampling.Stratified(test.Labels, test.Classes.Count, t, seed + 2, test.Name)
            : Enumerable.Range(0, test.Count).ToArray();
        return new DataSplit(dataset ?? pool.Name, seed, pool.Count, test.Count, train, validation, testIdx);
    }

    /// <summary>Throws unless the split was made for sets of these sizes.</summary>
    public void CheckFits(ILabeledDataset pool, ILabeledDataset test)
    {
        if (pool.Count != PoolSize || test.Count != TestPoolSize)
            throw new InvalidOperationException(
                $"split for '{Dataset}' was made for a pool of {PoolSize} and a test set of {TestPoolSize}, the data have {pool.Count} and {test.Count}");
    }

    public (ImageDataset Train, ImageDataset Validation, ImageDataset Test) Apply(ImageDataset pool, ImageDataset test)
    {
        CheckFits(pool, test);
        return (pool.Subset(Train.ToArray(), pool.Name + "/train"), pool.Subset(Validation.ToArray(), pool.Name + "/validation"), test.Subset(Test.ToArray(), test.Name));
    }

    public (TextDataset Train, TextDataset Validation, TextDataset Test) Apply(TextDataset pool, TextDataset test)
    {
        CheckFits(pool, test);
        return (pool.Subset(Train.ToArray(), pool.Name + "/train"), pool.Subset(Validation.ToArray(), pool.Name + "/validation"), test.Subset(Test.ToArray(), test.Name));
    }

    /// <summary>Deterministic JSON: fixed key order, invariant numbers, "\n" line ends, one line per index list.</summary>
    public string ToJson()
    {
        var sb = new StringBuilder();
        sb.Append("{\n");
        sb.Append("  \"format\": ").Append(FormatVersion).Append(",\n");
        sb.Append("  \"dataset\": ").Append(JsonSerializer.Serialize(Dataset)).Append(",\n");
        sb.Append("  \"seed\": ").Append(Seed.ToString(CultureInfo.InvariantCulture)).Append(",\n");
        sb.Append("  \"sizes\": {\"pool\": ").Append(PoolSize).Append(", \"test_pool\": ").Append(TestPoolSize)
          .Append(", \"train\": ").Append(Train.Count).Append(", \"validation\": ").Append(Validation.Count)
          .Append(", \"test\": ").Append(Test.Count).Append("},\n");
        AppendList(sb, "train", Train, last: false);
        AppendList(sb, "validation", Validation, last: false);
        AppendList(sb, "test", Test, last: true);
        sb.Append("}\n");
        return sb.ToString();
    }

    public void Save(string path) => IO.AtomicFile.WriteAllText(path, ToJson());

    public static DataSplit Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: split file not found", path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw DataFiles.Bad(path, $"not valid JSON ({e.Message})"); }
        using (doc)
        {
            try
            {
                var r = doc.RootElement;
                int format = r.GetProperty("format").GetInt32();
                if (format != FormatVersion) throw DataFiles.Bad(path, $"split format {format}, this library reads {FormatVersion}");
                var sizes = r.GetProperty("sizes");
                var split = new DataSplit(
                    r.GetProperty("dataset").GetString() ?? "",
                    r.GetProperty("seed").GetInt32(),
                    sizes.GetProperty("pool").GetInt32(),
                    sizes.GetProperty("test_pool").GetInt32(),
                    Ints(r.GetProperty("train")), Ints(r.GetProperty("validation")), Ints(r.GetProperty("test")));
                foreach (var (key, list) in new[] { ("train", split.Train), ("validation", split.Validation), ("test", split.Test) })
                    if (sizes.GetProperty(key).GetInt32() != list.Count)
                        throw DataFiles.Bad(path, $"sizes.{key} = {sizes.GetProperty(key).GetInt32()} but the list has {list.Count} indices");
                return split;
            }
            catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
            {
                throw DataFiles.Bad(path, $"not a valid split file ({e.Message})");
            }
        }
    }

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    private static void AppendList(StringBuilder sb, string key, IReadOnlyList<int> values, bool last)
    {
        sb.Append("  \"").Append(key).Append("\": [");
        for (int i = 0; i < values.Count; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(values[i].ToString(CultureInfo.InvariantCulture));
        }
        sb.Append(last ? "]\n" : "],\n");
    }
}
