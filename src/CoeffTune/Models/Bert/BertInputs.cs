using CoeffTune.Data;
using CoeffTune.Text;
using CoeffTune.Training;
using static TorchSharp.torch;

namespace CoeffTune.Models;

/// <summary>A BERT-family encoder's preprocessing: its own tokenizer (see <see cref="TextTokenizer"/>).</summary>
public sealed class BertInputs(TextTokenizer tokenizer) : IModelInputs
{
    private static readonly string[] ProbeTexts =
    [
        "Congratulations, you have won a free prize! Reply now.",
        "Are we still meeting for lunch tomorrow?",
        "The quarterly report is attached for your review.",
        "Limited offer: cheap meds, no prescription needed.",
    ];

    public TextTokenizer Tokenizer => tokenizer;
    public TaskKind Kind => TaskKind.Text;

    public void Check(TaskData task)
    {
        if (task.Kind != TaskKind.Text) throw new ArgumentException($"task {task.Name}: an image task; a text model reads text");
    }

    public IBatchSource Source(ILabeledDataset data) => data is TextDataset t
        ? new TextBatchSource(t, tokenizer)
        : throw new ArgumentException($"task {data.Name}: an image task; a text model reads text");

    public Batch Encode(IReadOnlyList<string> inputs, Device device) => tokenizer.EncodeBatch(inputs, device);

    public Batch Probe(Device device) => tokenizer.EncodeBatch(ProbeTexts, device);
}
