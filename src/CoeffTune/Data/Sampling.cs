namespace CoeffTune.Data;

/// <summary>
/// Seeded, stratified index sampling. Every method draws from its own <c>new Random(seed)</c> in a fixed
/// order (classes ascending, indices ascending before shuffling) and returns indices sorted ascending, so
/// the same labels and seed always give the same indices.
/// </summary>
public static class Sampling
{
    /// <summary>Exactly <paramref name="perClass"/> items of every class (few-shot "N per class").</summary>
    public static int[] PerClass(ILabeledDataset data, int perClass, int seed) => PerClass(data.Labels, data.Classes.Count, perClass, seed, data.Name);

    public static int[] PerClass(IReadOnlyList<int> labels, int classCount, int perClass, int seed, string what = "dataset")
    {
        ArgumentOutOfRangeException.ThrowIfNegative(perClass);
        var byClass = ByClass(labels, classCount);
        for (int c = 0; c < classCount; c++)
            if (byClass[c].Length < perClass)
                throw new ArgumentException($"{what}: class {c} has {byClass[c].Length} items, fewer than the {perClass} asked for");
        return Draw(byClass, Enumerable.Repeat(perClass, classCount).ToArray(), new Random(seed));
    }

    /// <summary>
    /// <paramref name="total"/> items with every class in proportion to its share (largest remainder,
    /// ties to the lower class), so each class count is within one of total * share.
    /// </summary>
    public static int[] Stratified(ILabeledDataset data, int total, int seed) => Stratified(data.Labels, data.Classes.Count, total, seed, data.Name);

    public static int[] Stratified(IReadOnlyList<int> labels, int classCount, int total, int seed, string what = "dataset")
    {
        if (total < 0 || total > labels.Count)
            throw new ArgumentOutOfRangeException(nameof(total), $"{what}: cannot draw {total} of {labels.Count} items");
        var byClass = ByClass(labels, classCount);
        return Draw(byClass, Quotas(byClass.Select(b => b.Length).ToArray(), total), new Random(seed));
    }

    /// <summary>Proportional allocation of <paramref name="total"/> over class sizes by largest remainder.</summary>
    public static int[] Quotas(int[] sizes, int total)
    {
        long n = sizes.Sum(s => (long)s);
        if (total > n) throw new ArgumentOutOfRangeException(nameof(total), $"cannot take {total} of {n}");
        var quotas = new int[sizes.Length];
        var remainders = new long[sizes.Length];
        int assigned = 0;
        for (int c = 0; c < sizes.Length; c++)
        {
            long scaled = (long)total * sizes[c];
            quotas[c] = n == 0 ? 0 : (int)(scaled / n);
            remainders[c] = n == 0 ? 0 : scaled % n;
            assigned += quotas[c];
        }
        foreach (var c in Enumerable.Range(0, sizes.Length).OrderByDescending(c => remainders[c]).ThenBy(c => c).Take(total - assigned))
            quotas[c]++;
        return quotas;
    }

    internal static int[][] ByClass(IReadOnlyList<int> labels, int classCount)
    {
        var lists = Enumerable.Range(0, classCount).Select(_ => new List<int>()).ToArray();
        for (int i = 0; i < labels.Count; i++)
        {
            if ((uint)labels[i] >= (uint)classCount) throw new ArgumentException($"label {labels[i]} of item {i} is outside 0..{classCount - 1}");
            lists[labels[i]].Add(i);
        }
        return lists.Select(l => l.ToArray()).ToArray();
    }

    private static int[] Draw(int[][] byClass, int[] counts, Random rng)
    {
        var result = new List<int>();
        for (int c = 0; c < byClass.Length; c++)
        {
            var pool = (int[])byClass[c].Clone();
            IndexBatches.Shuffle(pool, rng);
            result.AddRange(pool.Take(counts[c]));
        }
        result.Sort();
        return result.ToArray();
    }

    /// <summary>
    /// Splits 0..n-1 into (train, test) keeping every group on one side: within each class (the label of a
    /// group's first item), a seeded shuffle of its groups sends round(testFraction * groups) to test, at
    /// least one when the class has two or more groups.
    /// </summary>
    public static (int[] Train, int[] Test) HoldOutGroups(IReadOnlyList<int> labels, IReadOnlyList<string> groups, int classCount, double testFraction, int seed)
    {
        if (labels.Count != groups.Count) throw new ArgumentException($"{labels.Count} labels but {groups.Count} groups");
        if (!(testFraction > 0 && testFraction < 1)) throw new ArgumentOutOfRangeException(nameof(testFraction), $"test fraction {testFraction} must be in (0, 1)");
        var groupClass = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < labels.Count; i++) groupClass.TryAdd(groups[i], labels[i]);
        var rng = new Random(seed);
        var testGroups = new HashSet<string>(StringComparer.Ordinal);
        for (int c = 0; c < classCount; c++)
        {
            var gs = groupClass.Where(g => g.Value == c).Select(g => g.Key).OrderBy(g => g, StringComparer.Ordinal).ToArray();
            IndexBatches.Shuffle(gs, rng);
            int take = (int)Math.Round(testFraction * gs.Length, MidpointRounding.AwayFromZero);
            if (gs.Length >= 2) take = Math.Clamp(take, 1, gs.Length - 1);
            foreach (var g in gs.Take(take)) testGroups.Add(g);
        }
        var train = new List<int>();
        var test = new List<int>();
        for (int i = 0; i < labels.Count; i++) (testGroups.Contains(groups[i]) ? test : train).Add(i);
        return (train.ToArray(), test.ToArray());
    }

    /// <summary>Stratified (pool, test) split of 0..n-1 with exactly <paramref name="testCount"/> items in test.</summary>
    public static (int[] Pool, int[] Test) HoldOut(IReadOnlyList<int> labels, int classCount, int testCount, int seed)
    {
        var test = Stratified(labels, classCount, testCount, seed);
        var inTest = new bool[labels.Count];
        foreach (var i in test) inTest[i] = true;
        return (Enumerable.Range(0, labels.Count).Where(i => !inTest[i]).ToArray(), test);
    }
}
