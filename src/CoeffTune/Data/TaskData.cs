namespace CoeffTune.Data;

public enum TaskKind { Image, Text }

/// <summary>
/// A classification task ready for training: a training pool (train/validation splits are drawn from it,
/// see <see cref="DataSplit"/>) and a held-out test set, both with the same classes.
/// </summary>
public sealed record TaskData
{
    public string Name { get; }
    public TaskKind Kind { get; }
    public ILabeledDataset TrainPool { get; }
    public ILabeledDataset Test { get; }
    public IReadOnlyList<string> Classes => TrainPool.Classes;
    /// <summary>Image shape (0 for text tasks).</summary>
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    public TaskData(string name, ILabeledDataset trainPool, ILabeledDataset test)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("task name is empty");
        if (!trainPool.Classes.SequenceEqual(test.Classes))
            throw new ArgumentException($"task {name}: train classes ({string.Join(", ", trainPool.Classes)}) differ from test classes ({string.Join(", ", test.Classes)})");
        switch (trainPool, test)
        {
            case (ImageDataset a, ImageDataset b):
                if (a.Channels != b.Channels || a.Height != b.Height || a.Width != b.Width)
                    throw new ArgumentException($"task {name}: train images {a.Channels}x{a.Height}x{a.Width} but test images {b.Channels}x{b.Height}x{b.Width}");
                Kind = TaskKind.Image;
                (Channels, Height, Width) = (a.Channels, a.Height, a.Width);
                break;
            case (TextDataset, TextDataset):
                Kind = TaskKind.Text;
                break;
            default:
                throw new ArgumentException($"task {name}: train and test must both be ImageDataset or both TextDataset");
        }
        Name = name;
        TrainPool = trainPool;
        Test = test;
    }

    public ImageDataset ImageTrain => TrainPool as ImageDataset ?? throw new InvalidOperationException($"task {Name} is a text task");
    public ImageDataset ImageTest => Test as ImageDataset ?? throw new InvalidOperationException($"task {Name} is a text task");
    public TextDataset TextTrain => TrainPool as TextDataset ?? throw new InvalidOperationException($"task {Name} is an image task");
    public TextDataset TextTest => Test as TextDataset ?? throw new InvalidOperationException($"task {Name} is an image task");

    public override string ToString() => Kind == TaskKind.Image
        ? $"{Name}: image {Channels}x{Height}x{Width}, {Classes.Count} classes, pool {TrainPool.Count}, test {Test.Count}"
        : $"{Name}: text, {Classes.Count} classes, pool {TrainPool.Count}, test {Test.Count}";
}

/// <summary>How to read a task given as a path (ignored for named tasks).</summary>
public sealed record PathTaskOptions
{
    public int Height { get; }
    public int Width { get; }
    public int Channels { get; }
    public string TextColumn { get; }
    public string LabelColumn { get; }
    /// <summary>Share of the data held out as test when the path has no test part of its own.</summary>
    public double TestFraction { get; }
    /// <summary>Image folders: skip files that do not decode whole (counted and reported) instead of stopping.</summary>
    public bool SkipBad { get; init; }
    /// <summary>Text files: "utf-8" (the default; invalid bytes are an error naming the line) or "latin-1".</summary>
    public string Encoding { get; init; } = "utf-8";

    public PathTaskOptions(int height = 28, int width = 28, int channels = 1, string textColumn = "text", string labelColumn = "label", double testFraction = 0.2)
    {
        if (height < 1 || width < 1) throw new ArgumentOutOfRangeException(nameof(height), $"image size {height}x{width} must be positive");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), $"channels {channels} must be 1 or 3");
        if (string.IsNullOrWhiteSpace(textColumn) || string.IsNullOrWhiteSpace(labelColumn)) throw new ArgumentException("text and label column names must not be empty");
        if (!(testFraction > 0 && testFraction < 1)) throw new ArgumentOutOfRangeException(nameof(testFraction), $"test fraction {testFraction} must be in (0, 1)");
        (Height, Width, Channels, TextColumn, LabelColumn, TestFraction) = (height, width, channels, textColumn, labelColumn, testFraction);
    }

    public static PathTaskOptions Default { get; } = new();
}
