namespace CoeffTune.Data;

/// <summary>What sampling and splitting need from any classification dataset: labels and class names.</summary>
public interface ILabeledDataset
{
    /// <summary>A short name, used in split files and messages.</summary>
    string Name { get; }
    int Count { get; }
    IReadOnlyList<string> Classes { get; }
    /// <summary>The class index of every item, each in [0, Classes.Count).</summary>
    IReadOnlyList<int> Labels { get; }
}

/// <summary>Index batches for a training or evaluation loop.</summary>
public static class IndexBatches
{
    /// <summary>
    /// Splits 0..count-1 into batches of <paramref name="batchSize"/> (the last one may be smaller unless
    /// <paramref name="dropLast"/>), in order, or shuffled by a seeded RNG when <paramref name="shuffleSeed"/> is set.
    /// </summary>
    public static IEnumerable<int[]> Make(int count, int batchSize, int? shuffleSeed = null, bool dropLast = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var order = Enumerable.Range(0, count).ToArray();
        if (shuffleSeed is int seed) Shuffle(order, new Random(seed));
        for (int start = 0; start < count; start += batchSize)
        {
            int n = Math.Min(batchSize, count - start);
            if (n < batchSize && dropLast) yield break;
            yield return order.AsSpan(start, n).ToArray();
        }
    }

    /// <summary>Fisher-Yates with the caller's RNG, so a seed fixes the order on every platform.</summary>
    internal static void Shuffle<T>(T[] items, Random rng)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}

internal static class DatasetChecks
{
    public static void Labels(IReadOnlyList<int> labels, int classCount, string what)
    {
        if (classCount < 1) throw new ArgumentException($"{what}: no classes");
        for (int i = 0; i < labels.Count; i++)
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentException($"{what}: label {labels[i]} of item {i} is outside 0..{classCount - 1}");
    }

    public static void Indices(int[] indices, int count, string what)
    {
        foreach (var i in indices)
            if ((uint)i >= (uint)count)
                throw new ArgumentOutOfRangeException(nameof(indices), $"{what}: index {i} is outside 0..{count - 1}");
    }
}
